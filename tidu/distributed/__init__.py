"""Parameter-server training: synchronous SGD, ASGD, DC-ASGD and Downpour SGD, simulated in one
process (exact, reproducible) or on Ray actors across machines.

    model.fit(x, y, batch_size=128, epochs=5,
              distributed=tidu.distributed.ParameterServer(DCASGD(0.1), num_workers=8))
    model.fit(x, y, distributed='dcasgd')       # a rule name: default settings

See docs/distributed.md for running on several machines, and `tidu.distributed.experiment.compare` for the
ASGD-vs-DC-ASGD study (`tidu distributed` on the command line).
"""
from tidu.distributed.rules import ASGD, DCASGD, Downpour, Rule, SyncSGD
from tidu.distributed.server import ParameterServer, get

__all__ = ["ASGD", "DCASGD", "Downpour", "ParameterServer", "Rule", "SyncSGD", "get"]

