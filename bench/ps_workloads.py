"""The parameter server on Ray against the simulator, in one process, interleaved (issue 11).

    run_ray(steps, xtr, ytr)   DC-ASGD(0.1), M=4 workers, the MNIST MLP (784-512-10), batch 128

On a shared 2-core machine a background process changes a wall time several-fold (PERF.md
lesson 6), so the two backends are timed turn about in the same process: simulator, Ray,
simulator, Ray. Both report the epoch's `updates_per_sec` (server updates over the seconds
of training; the Ray backend's actors are built before its epoch starts, and that start is
reported apart). Ray runs twice: with the workers' shared-memory mailboxes (the default on
one machine) and with TIDU_PS_MAILBOX=0, every array through Ray's object store as between
machines. Ray's workers get 1 BLAS thread each (4 processes on 2 cores); the simulator, one
process, runs with the benchmark's 2 and (threadpoolctl) with 1: on a busy machine OpenBLAS's
second thread waits spinning for a core and the simulator slows several-fold (PERF.md lesson 6),
which would flatter Ray, so the table sets Ray against the faster of the two.
"""
import statistics
import time

ROUNDS = 2                   # simulator/Ray alternations per Ray session
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _epoch(backend, steps, x, y, model_fn):
    from tidu import distributed

    m = model_fn()
    ps = distributed.ParameterServer(distributed.DCASGD(0.1), num_workers=4, backend=backend, seed=0)
    try:
        return ps.train_epoch(m, x, y, batch_size=128, steps=steps)["updates_per_sec"]
    finally:
        ps.close(m)


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(1, user_api="blas")


def run_ray(steps, xtr, ytr, model_fn, one_hot):
    import ray

    from tidu import distributed

    y = one_hot(ytr)
    out = {}
    for variant, env in (("mailbox", {}), ("objects", {"TIDU_PS_MAILBOX": "0"})):
        ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level="ERROR", runtime_env={"env_vars": {**ONE_THREAD, **env}})
        try:
            m = model_fn()
            ps = distributed.ParameterServer(distributed.DCASGD(0.1), num_workers=4, backend="ray", seed=0)
            t = time.perf_counter()
            ps.train_epoch(m, xtr, y, batch_size=128, steps=8)              # actors built, warm
            out[f"ray_{variant}_start_seconds"] = time.perf_counter() - t
            sim, sim1, par = [], [], []
            for _ in range(ROUNDS):
                sim.append(_epoch("simulated", steps, xtr, y, model_fn))
                par.append(ps.train_epoch(m, xtr, y, batch_size=128, steps=steps)["updates_per_sec"])
                limit = _one_blas_thread()
                if limit is not None:
                    with limit:
                        sim1.append(_epoch("simulated", steps, xtr, y, model_fn))
            ps.close(m)
        finally:
            ray.shutdown()
        out[f"simulator_vs_{variant}_updates_per_sec"] = statistics.median(sim)
        if sim1:
            out[f"simulator_1thread_vs_{variant}_updates_per_sec"] = statistics.median(sim1)
        out[f"ray_{variant}_updates_per_sec"] = statistics.median(par)
    return out
