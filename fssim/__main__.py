"""python -m fssim --host 127.0.0.1 --port 8021 --password ClueCon [--rules file] [--conf dir]"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402

import gevent  # noqa: E402

from fssim.rules import Rules, demo_rules  # noqa: E402
from fssim.simulator import Simulator  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m fssim", description="FreeSWITCH simulator (ESL on TCP)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8021)
    ap.add_argument("--password", default="ClueCon")
    ap.add_argument("--rules", help="JSON answer rules (see fssim/rules.py); default: number-suffix demo rules")
    ap.add_argument("--conf", help="FreeSWITCH conf dir for gateways, ACLs and directory users")
    ap.add_argument("--heartbeat", type=float, default=20.0, help="HEARTBEAT interval in seconds")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    rules = Rules.load(a.rules) if a.rules else demo_rules()
    sim = Simulator(a.host, a.port, a.password, rules=rules, conf_dir=a.conf, heartbeat_interval=a.heartbeat)
    sim.start()
    logging.getLogger("fssim").info("FreeSWITCH simulator listening on %s:%d", a.host, sim.port)
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    sim.stop()


if __name__ == "__main__":
    main()
