"""The `tidu` command.

    tidu train mnist-mlp [--optimizer rmsprop] [--epochs 5] [--batch-size 128]
                         [--plot curves.png] [--save model.tidu] [--subset]
                         [--checkpoint run.tidu [--checkpoint-every 100]] [--resume run.tidu]
    tidu train mnist-cnn ...
    tidu train mnist-lstm ...

Each subcommand is one function that adds its parser to the subparsers:

    def add_lab(sub):
        p = sub.add_parser("lab", help="...")
        p.add_argument(...)
        p.set_defaults(run=run_lab)       # run(args) -> exit status (`func=` works too)

registered here with @command, or, when it lives in another module, named in EXTERNAL as
'module:function' (imported only when the parser is built).
"""
import argparse
import importlib
import os
import sys

__all__ = ["main", "build_parser", "command", "COMMANDS", "EXTERNAL", "MODELS"]

COMMANDS = []
EXTERNAL = ("tidu.lab.cli:add_subcommands", "tidu.distributed.cli:add_distributed_subcommand")


def command(add_parser):
    """Register a function `add_parser(subparsers)` that adds one subcommand."""
    COMMANDS.append(add_parser)
    return add_parser


# --- train ---------------------------------------------------------------------------------
def _mlp():
    from tidu import layers, models
    model = models.Sequential(name="mnist_mlp")
    model.add(layers.Dense(512, activation="relu", input_shape=(28 * 28,)))
    model.add(layers.Dense(10, activation="softmax"))
    return model


def _cnn():
    from tidu import layers, models
    return models.Sequential([
        layers.Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ], name="mnist_cnn")


def _lstm():
    from tidu import layers, models
    return models.Sequential([
        layers.LSTM(128, input_shape=(28, 28)),
        layers.Dense(10, activation="softmax"),
    ], name="mnist_lstm")


# name: (model factory, input shape of one sample, default optimizer, epochs, batch size)
MODELS = {
    "mnist-mlp": (_mlp, (28 * 28,), "rmsprop", 5, 128),
    "mnist-cnn": (_cnn, (28, 28, 1), "adam", 3, 64),
    "mnist-lstm": (_lstm, (28, 28), "adam", 3, 64),
}


@command
def add_train(sub):
    p = sub.add_parser("train", help="train a model on MNIST (Keras' examples)",
                       description="Train one of the MNIST models and report its test accuracy.")
    p.add_argument("model", choices=sorted(MODELS), help="which network")
    p.add_argument("--optimizer", default=None,
                   help="optimizer name (default: rmsprop for the MLP, adam for the others)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: 5 MLP, 3 CNN/LSTM)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="mini-batch size (default: 128 for the MLP, 64 for the CNN and LSTM)")
    p.add_argument("--plot", metavar="PATH", help="save the learning curves as a PNG")
    p.add_argument("--save", metavar="PATH", help="save the trained model (one .tidu file)")
    p.add_argument("--subset", action="store_true",
                   help="use the small MNIST subset shipped with tidu (2,000 + 500 images; no download)")
    p.add_argument("--seed", type=int, default=None, help="random seed (weights, shuffling, dropout)")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="keep a training checkpoint in PATH (written atomically each epoch, or "
                        "every --checkpoint-every steps), to continue with --resume PATH")
    p.add_argument("--checkpoint-every", metavar="N", type=int, default=None,
                   help="write the checkpoint every N steps instead of every epoch")
    p.add_argument("--resume", metavar="PATH",
                   help="continue the run whose checkpoint is PATH (same model, options and "
                        "seed), ending with the weights it would have had; checkpoints go on "
                        "into PATH unless --checkpoint names another file")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="progress output")
    p.set_defaults(run=run_train)


def run_train(args):
    from tidu import backend
    from tidu.datasets import mnist
    from tidu.utils import to_categorical

    factory, shape, default_opt, default_epochs, default_bs = MODELS[args.model]
    epochs = default_epochs if args.epochs is None else args.epochs
    batch_size = default_bs if args.batch_size is None else args.batch_size
    if epochs < 0:
        raise ValueError(f"--epochs: expected an int >= 0, got {epochs}")
    if batch_size <= 0:
        raise ValueError(f"--batch-size: expected a positive int, got {batch_size}")
    every = getattr(args, "checkpoint_every", None)
    if every is not None and every <= 0:
        raise ValueError(f"--checkpoint-every: expected a positive int, got {every}")
    resume = getattr(args, "resume", None)
    ckpt_path = getattr(args, "checkpoint", None) or resume
    if every is not None and ckpt_path is None:
        raise ValueError("--checkpoint-every: give --checkpoint PATH (or --resume PATH) too")
    if resume is not None and not os.path.exists(resume):
        raise FileNotFoundError(f"--resume: no checkpoint {resume!r}")
    if args.seed is not None:
        backend.seed(args.seed)
    (x_train, y_train), (x_test, y_test) = mnist.load_subset() if args.subset else mnist.load_data()
    x_train = x_train.reshape((len(x_train), *shape)).astype("float32") / 255
    x_test = x_test.reshape((len(x_test), *shape)).astype("float32") / 255
    y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)

    model = factory()
    model.compile(optimizer=args.optimizer or default_opt, loss="categorical_crossentropy",
                  metrics=["accuracy"])
    if args.verbose:
        model.summary()
    cbs = []
    if ckpt_path is not None:
        from tidu.callbacks import ModelCheckpoint
        cbs.append(ModelCheckpoint(ckpt_path, save_freq=every or "epoch"))
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size,
                        verbose=args.verbose, seed=args.seed, callbacks=cbs, resume_from=resume,
                        validation_data=(x_test, y_test) if args.plot else None)
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    print(f"test_loss: {test_loss:.4f} - test_acc: {test_acc:.4f}")
    if args.plot:
        history.plot(args.plot, title=f"{args.model} ({args.optimizer or default_opt})")
        print(f"learning curves saved to {args.plot}")
    if args.save:
        model.save(args.save)
        print(f"model saved to {args.save}")
    return 0


# --- entry point ---------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(prog="tidu", description="tidu (梯度): deep learning on NumPy")
    from tidu.version import __version__
    parser.add_argument("--version", action="version", version=f"tidu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    for spec in EXTERNAL:
        module, _, name = spec.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name is not None and module.startswith(e.name):  # not installed / not written yet
                continue
            raise
        getattr(mod, name)(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "run", None) or getattr(args, "func", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        return run(args) or 0
    except (ValueError, TypeError, FileNotFoundError, ImportError) as e:
        print(f"tidu {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
