"""Kill a training run with SIGKILL at a random step, resume it from its checkpoint, and check
that it ends with exactly the weights of a run that was never interrupted.

    python examples/resume_demo.py                 # kill step drawn from --kill-seed 0
    python examples/resume_demo.py --kill-seed 7 --workdir /tmp/resume

Three runs of the same training (an MLP with dropout on the MNIST subset shipped with tidu,
Adam, shuffled mini-batches, seed 0), each in its own process:

    1. the reference: trained to the end, its final weights written to reference.safetensors;
    2. the victim: checkpoints every --save-freq steps (ModelCheckpoint, written atomically),
       reports each finished step on stdout, and is killed with SIGKILL as soon as it reports
       the kill step: wherever it is then (training, or in the middle of writing a checkpoint);
    3. the resumed run: the same script with --resume, i.e. model.fit(..., resume_from=checkpoint),
       which writes resumed.safetensors at the end.

The two weight files are then compared with np.array_equal, tensor by tensor. The script
exits 0 when they are identical, 1 otherwise.
"""
import argparse
import os
import signal
import subprocess
import sys

import numpy as np

EPOCHS, BATCH_SIZE, SEED = 3, 64, 0


def data():
    from tidu.datasets import mnist
    from tidu.utils import to_categorical
    (x, y), _ = mnist.load_subset()
    return x.reshape(len(x), 784).astype("float32") / 255, to_categorical(y, 10)


def model():
    from tidu import backend, layers, models
    backend.seed(SEED)  # the same initial weights in every process
    net = models.Sequential([layers.Dense(64, activation="relu", input_shape=(784,)),
                             layers.Dropout(0.2),
                             layers.Dense(10, activation="softmax")])
    net.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return net


def train(checkpoint, out, save_freq, resume):
    """One run (in a child process): prints 'step <k>' after each step, flushed."""
    from tidu import callbacks

    class Report(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step = 0

        def on_train_begin(self, logs=None):
            self.step = self.model.optimizer.iterations

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            print(f"step {self.step}", flush=True)

    x, y = data()
    net = model()
    cbs = [Report()]
    if checkpoint:
        cbs.append(callbacks.ModelCheckpoint(checkpoint, save_freq=save_freq))
    resume_from = checkpoint if resume and os.path.exists(checkpoint) else None
    net.fit(x, y, epochs=EPOCHS, batch_size=BATCH_SIZE, seed=SEED, verbose=0, callbacks=cbs,
            resume_from=resume_from)
    net.save_weights(out)
    print("done", flush=True)


def child(*args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return [sys.executable, os.path.abspath(__file__), "--child", *map(str, args)], env


def run_to_end(*args):
    cmd, env = child(*args)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def run_and_kill(kill_step, *args):
    """Start a child and SIGKILL it when it reports step `kill_step`; True if it was killed."""
    cmd, env = child(*args)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    killed = False
    for line in proc.stdout:
        if line.strip() == f"step {kill_step}":
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.stdout.close()
    proc.wait()
    return killed and proc.returncode == -signal.SIGKILL


def steps_total():
    n = len(data()[0])
    return EPOCHS * -(-n // BATCH_SIZE)


def demo(workdir, kill_seed=0, save_freq=7):
    """Run the three processes in `workdir`; returns (kill step, identical?)."""
    from safetensors.numpy import load_file

    os.makedirs(workdir, exist_ok=True)
    ckpt = os.path.join(workdir, "run.tidu")
    ref, resumed = os.path.join(workdir, "reference.safetensors"), os.path.join(workdir, "resumed.safetensors")
    for path in (ckpt, ref, resumed):
        if os.path.exists(path):
            os.remove(path)
    total = steps_total()
    kill_step = int(np.random.default_rng(kill_seed).integers(1, total - 5))

    run_to_end("", ref, save_freq, 0)
    if not run_and_kill(kill_step, ckpt, os.path.join(workdir, "victim.safetensors"), save_freq, 0):
        raise RuntimeError(f"the victim finished before it could be killed at step {kill_step}")
    run_to_end(ckpt, resumed, save_freq, 1)

    a, b = load_file(ref), load_file(resumed)
    identical = sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    return kill_step, identical


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kill-seed", type=int, default=0, help="seeds the choice of the kill step")
    parser.add_argument("--save-freq", type=int, default=7, help="checkpoint every this many steps")
    parser.add_argument("--workdir", default="resume_demo", help="where the files go")
    parser.add_argument("--child", nargs=4, metavar=("CHECKPOINT", "OUT", "SAVE_FREQ", "RESUME"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        checkpoint, out, save_freq, resume = args.child
        train(checkpoint, out, int(save_freq), resume == "1")
        return 0
    kill_step, identical = demo(args.workdir, args.kill_seed, args.save_freq)
    print(f"killed at step {kill_step} of {steps_total()} with SIGKILL, resumed from the checkpoint: "
          f"final weights {'identical to' if identical else 'DIFFERENT from'} the uninterrupted run's")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
