"""FreeSWITCH simulator: an Event Socket server that behaves like FreeSWITCH 1.10 with mod_audio_fork.

Public entry point: `fssim.simulator.Simulator`. The byte-level behaviour copies the captures in
../shared/freeswitch/captures; where they disagree with intuition, the captures win.
"""
from fssim.rules import Outcome, Rule, Rules
from fssim.simulator import Simulator

__all__ = ["Outcome", "Rule", "Rules", "Simulator"]
