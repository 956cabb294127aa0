"""`tidu lab` and `tidu compare` subcommands."""


def add_subcommands(subparsers):
    p = subparsers.add_parser("lab", help="optimizer paths on a test function (contour plot)",
                              description="Run optimizers on a 2-D test function and draw their paths.")
    p.add_argument("--function", default="beale", help="beale, rosenbrock, saddle, himmelblau, quadratic")
    p.add_argument("--optimizers", default="sgd,momentum,nesterov,adagrad,adadelta,rmsprop,adam",
                   help="comma-separated optimizer names (any of tidu.optimizers', closure methods included; "
                        "one step of lbfgs is up to max_iter=20 iterations)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--learning-rate", type=float, default=None,
                   help="one learning rate for all first-order methods (default: the lab's per-function "
                        "table); newton, bfgs, lbfgs, coordinate_descent keep their own (a line search "
                        "or a Newton step scales it)")
    p.add_argument("--start", default=None, help="start point 'x,y' (default: the function's)")
    p.add_argument("--out", default="lab.png", help="PNG to write")
    p.add_argument("--gif", default=None, help="also write an animated GIF here")
    p.add_argument("--serve", action="store_true",
                   help="instead: serve the lab as a page in the browser (pick the function, optimizers, "
                        "learning rates; see the paths and loss curves); prints the URL")
    p.add_argument("--host", default="127.0.0.1",
                   help="with --serve: address to listen on (default 127.0.0.1, this machine only; "
                        "the server has no authentication)")
    p.add_argument("--port", type=int, default=8000, help="with --serve: port (0: any free port)")
    p.set_defaults(func=run_lab)

    c = subparsers.add_parser("compare", help="train one model with several optimizers and plot the curves",
                              description="Train the same model from the same initial weights with each "
                                          "optimizer; print a table and plot the loss curves.")
    c.add_argument("--optimizers", default="sgd,momentum,rmsprop,adam")
    c.add_argument("--task", default="mnist-mlp", help="mnist-mlp or mnist-cnn")
    c.add_argument("--epochs", type=int, default=1)
    c.add_argument("--batch-size", type=int, default=128)
    c.add_argument("--closure-batch-size", type=int, default=None,
                   help="batch size for the closure methods (newton, bfgs, lbfgs, coordinate_descent; "
                        "default: the whole training set, one step per epoch)")
    c.add_argument("--subset", action="store_true", help="use the small MNIST subset shipped with tidu")
    c.add_argument("--out", default="compare.png")
    c.set_defaults(func=run_compare)


def run_lab(args):
    if args.serve:
        from tidu.lab.server import serve
        return serve(args.host, args.port)
    from tidu import lab

    start = None if args.start is None else [float(v) for v in args.start.split(",")]
    paths = lab.trajectories(args.optimizers, args.function, start=start, steps=args.steps,
                             learning_rate=args.learning_rate)
    fn = lab.get(args.function)
    w = max([14] + [len(label) + 2 for label in paths])
    print(f"{'optimizer':<{w}}{'final x':>12}{'final y':>12}{'f':>14}  steps")
    for label, path in paths.items():
        x = path[-1]
        print(f"{label:<{w}}{x[0]:>12.5f}{x[1]:>12.5f}{float(fn(x)):>14.6g}  {len(path) - 1}"
              + ("" if len(path) == args.steps + 1 else " (diverged)"))
    lab.plot_trajectories(paths, args.function, args.out)
    print(f"wrote {args.out}")
    if args.gif:
        lab.animate_trajectories(paths, args.function, args.gif)
        print(f"wrote {args.gif}")
    return 0


def run_compare(args):
    from tidu.lab.compare import compare, format_table

    table, _ = compare(args.optimizers, task=args.task, epochs=args.epochs, batch_size=args.batch_size,
                       out=args.out, subset=args.subset, closure_batch_size=args.closure_batch_size)
    print(format_table(table))
    print(f"wrote {args.out}")
    return 0
