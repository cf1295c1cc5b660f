#!/usr/bin/env python3
"""Floe chaos suite: a real multi-container cluster under a bounded store/read load, while nodes
are cut off the network, paused, killed and restarted, the clients are partitioned from a
minority of nodes and the ledger is killed and restarted. It counts what was lost.

    python3 docker/chaos.py --quick      # about 4-5 minutes on 2 cores (what .ci/run runs)
    python3 docker/chaos.py              # the full suite, about 12 minutes: longer faults,
                                         # beyond-f phases for pause and kill too, and a second
                                         # verification of a sample with f shards' nodes stopped
    python3 docker/chaos.py --quick --replicated --only baseline control-plane
                                         # the control plane as 3 ledger replicas over 3 etcd
                                         # members: kill -9 a replica, partition one from etcd,
                                         # kill -9 an etcd member; no operation may fail

It builds the image from the release binary if needed (or takes --image), writes the cluster
configuration into a temporary directory, starts docker/docker-compose.yaml under a unique
project name, and runs `floe load` in a container on the cluster's networks: workers that
alternate storing a new pseudo-random blob and reading back a random earlier one, each
operation journaled. Every scenario applies its faults for a fixed time and heals them. Then
the load stops and `floe load --verify` reads back every blob whose store succeeded (the blob
was certified), comparing bytes.

Per scenario it prints operations attempted, succeeded and failed, the failures split into
those that overlapped a time when more than f shards were unreachable from the client (or the
ledger was down, which stops every store and read; the grace after a heal is --grace seconds)
and the others, then the certified blobs lost and the wrong reads. It exits 1 when a certified
blob was lost or a read returned wrong bytes (or, with --strict, when an operation failed while
at most f shards were unreachable), 2 when the suite itself could not run, 3 when interrupted
or over its time bound. Containers, networks and volumes are removed in every case (unless
--keep). Only the Python standard library is used.
"""

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402

MODES = {
    # hold: seconds a fault lasts; beyond: seconds of a beyond-f fault; settle: seconds of
    # load before a fault and after a heal; limit: hard bound of the whole run, in seconds.
    "quick": dict(baseline=10, settle=5, hold=15, beyond=8, ledger_down=5, workers=2,
                  beyond_in=("disconnect",), limit=480, verify_degraded=False),
    "full": dict(baseline=20, settle=10, hold=30, beyond=15, ledger_down=10, workers=3,
                 beyond_in=("disconnect", "pause", "kill-restart"), limit=1200,
                 verify_degraded=True),
}
# Bound of one load operation. A read that meets hung connections to a cut-off node can take
# two request timeouts (10 s each in the cluster's client config) before it completes.
OP_TIMEOUT_S = 45


class Interrupted(Exception):
    pass


def now_ms():
    return int(time.time() * 1000)


def say(msg=""):
    print(msg, flush=True)


def docker(*args, check=True, timeout=60):
    return subprocess.run(["docker", *args], check=check, timeout=timeout, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class Suite:
    def __init__(self, args):
        self.args = args
        self.mode = dict(MODES["quick" if args.quick else "full"])
        self.rng = random.Random(args.seed)
        self.project = args.project or f"floechaos{os.getpid()}{random.randrange(16**4):04x}"
        self.tmp = None
        self.compose = None
        self.load_name = f"{self.project}-load"
        self.daemon = False
        self.scenarios = []  # dicts: name, desc, start, end
        self.impairments = []  # dicts: start, end, shards, ledger, label
        self.paused = set()
        self.timings = {}

    # -- setup --------------------------------------------------------------------------------

    def setup(self):
        t = time.monotonic()
        if docker("info", check=False, timeout=30).returncode != 0:
            raise SystemExit("no Docker engine answers `docker info`")
        self.image = self.args.image or cluster.build_image(self.args.binary, tag=None)
        probe = docker("run", "--rm", "--network", "none", self.image, "load", "--help",
                       check=False)
        if probe.returncode != 0:
            raise SystemExit(f"{self.image}: this floe has no `load` command: {probe.stderr}")
        d = docker("run", "--rm", "--network", "none", self.image, "daemon", "--help",
                   check=False)
        self.daemon = (not self.args.no_daemon and d.returncode == 0
                       and "--bind-address" in d.stdout)
        self.timings["image"] = time.monotonic() - t

        t = time.monotonic()
        self.tmp = tempfile.mkdtemp(prefix="floe-chaos-")
        self.jdir = os.path.join(self.tmp, "journal")
        os.makedirs(self.jdir)
        if self.args.replicated and not cluster.image_has_etcd(self.image):
            raise SystemExit(f"image {self.image} has no /etcd: {cluster.ETCD_MISSING}")
        cdir = cluster.init(os.path.join(self.tmp, "cluster"), self.image,
                            n_shards=self.args.n_shards, epoch_duration="1h",
                            replicated=self.args.replicated)
        self.compose = cluster.Compose(self.project, cdir, self.image, daemon=self.daemon,
                                       ledger_port="", daemon_port="")
        self.compose("up", "-d", capture=True, timeout=180)
        rows = self.compose.wait_healthy(deadline_s=120)
        self.shards = {r["name"]: int(r["shards"]) for r in rows}
        self.n = sum(self.shards.values())
        self.f = (self.n - 1) // 3
        self.nodes = sorted(self.shards, key=lambda s: int(s.split("-")[1]))
        self.ledger_url()  # the ledger answers on its published port
        if self.daemon:
            self.wait_daemon(60)
        self.timings["cluster up"] = time.monotonic() - t
        say(f"cluster {self.project}: ledger, {len(self.nodes)} nodes, n = {self.n} shards, "
            f"f = {self.f}; daemon {'on' if self.daemon else 'off (no `floe daemon` here)'}; "
            f"image {self.image}; seed {self.args.seed}")

    def port(self, service, port):
        out = self.compose("port", service, str(port), capture=True, check=False, quiet=True)
        addr = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        return addr.replace("0.0.0.0", "127.0.0.1") if addr else None

    def ledger_url(self):
        addr = self.port("ledger", cluster.LEDGER_PORT)
        return f"http://{addr}" if addr else None

    def ledger_answers(self):
        url = self.ledger_url()
        if not url:
            return False
        try:
            with urllib.request.urlopen(url + "/v1/system", timeout=2) as r:
                return r.status == 200
        except Exception:
            return False

    def wait_ledger(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.ledger_answers():
                return
            time.sleep(0.3)
        raise TimeoutError(f"the ledger did not answer within {seconds} s")

    def wait_daemon(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            addr = self.port("daemon", cluster.DAEMON_PORT)
            if addr:
                try:
                    with urllib.request.urlopen(f"http://{addr}/status", timeout=2) as r:
                        if r.status == 200:
                            return
                except Exception:
                    pass
            time.sleep(0.5)
        raise TimeoutError(f"the daemon did not answer /status within {seconds} s")

    def container(self, service):
        cid = self.compose.container(service)
        if not cid:
            raise RuntimeError(f"no container for service {service}")
        return cid

    def networks_of(self, cid):
        """{network name: aliases} of a container."""
        out = docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", cid)
        nets = json.loads(out.stdout)
        return {name: [a for a in (v.get("Aliases") or []) if not cid.startswith(a)]
                for name, v in nets.items()}

    # -- load ---------------------------------------------------------------------------------

    def planned_seconds(self):
        m = self.mode
        per = 2 * m["settle"] + m["hold"]
        total = m["baseline"] + 4 * per + 2 * m["settle"] + m["ledger_down"]
        total += len(m["beyond_in"]) * (m["beyond"] + m["settle"])
        return total

    def start_load(self):
        args = ["load", "--config", "/client/floe.yaml", "--journal", "/journal/load.jsonl",
                "--stop-file", "/journal/stop", "--duration", f"{self.planned_seconds() + 120}s",
                "--op-timeout", f"{OP_TIMEOUT_S}s", "--workers", str(self.mode["workers"]),
                "--min-size", "1KiB", "--max-size", "64KiB", "--epochs", "5",
                "--seed", str(self.args.seed)]
        if self.daemon:
            args += ["--daemon-url", f"http://daemon-front:{cluster.DAEMON_PORT}",
                     "--daemon-workers", "1"]
        env = {"RUST_LOG": self.args.load_log} if self.args.load_log else None
        self.compose.client(*args, volumes=[f"{self.jdir}:/journal"], detach=True,
                            name=self.load_name, timeout=60, env=env)
        self.load_started = now_ms()

    def stop_load(self):
        open(os.path.join(self.jdir, "stop"), "w").close()
        try:
            out = docker("wait", self.load_name, timeout=OP_TIMEOUT_S + 30)
            code = int(out.stdout.strip() or "0")
        except subprocess.TimeoutExpired:
            docker("stop", "-t", "5", self.load_name, check=False)
            code = -1
        logs = docker("logs", "--tail", "20", self.load_name, check=False)
        return code, (logs.stdout + logs.stderr).strip()

    def save_logs(self):
        """The load's stderr (client traces with --load-log) beside its journal."""
        out = docker("logs", self.load_name, check=False, timeout=60)
        with open(os.path.join(self.jdir, "load.log"), "w") as f:
            f.write(out.stdout + out.stderr)

    def journal(self, name="load.jsonl"):
        path = os.path.join(self.jdir, name)
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    # -- faults -------------------------------------------------------------------------------

    def pick(self, k, avoid=()):
        pool = [n for n in self.nodes if n not in avoid]
        return sorted(self.rng.sample(pool, k), key=self.nodes.index)

    def tolerable(self):
        """The most nodes whose shards together are at most f."""
        k, total = 0, 0
        for s in sorted(self.shards.values(), reverse=True):
            if total + s > self.f:
                break
            k, total = k + 1, total + s
        return k

    def beyond(self):
        """The fewest nodes whose shards together are more than f."""
        k, total = 0, 0
        for s in sorted(self.shards.values()):
            k, total = k + 1, total + s
            if total > self.f:
                return k
        return len(self.shards)

    def impair(self, label, nodes=(), ledger=False):
        shards = sum(self.shards[n] for n in nodes)
        imp = dict(start=now_ms(), end=None, shards=shards, ledger=ledger, label=label)
        self.impairments.append(imp)
        return imp

    def disconnect(self, cid, networks=None):
        """Disconnect a container from `networks` (default all); returns what to reconnect."""
        nets = self.networks_of(cid)
        cut = {n: a for n, a in nets.items() if networks is None or n in networks}
        self.parallel(lambda net: docker("network", "disconnect", "-f", net, cid), list(cut))
        return (cid, cut)

    def reconnect(self, cut):
        cid, nets = cut

        def connect(item):
            net, aliases = item
            cmd = ["network", "connect"]
            for a in aliases:
                cmd += ["--alias", a]
            docker(*cmd, net, cid)

        self.parallel(connect, list(nets.items()))

    @staticmethod
    def parallel(fn, items):
        """[fn(x) for x in items], run concurrently; the first exception is raised."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
            return list(pool.map(fn, items))

    def sleep(self, seconds):
        time.sleep(seconds)

    def node_desc(self, nodes):
        shards = sum(self.shards[n] for n in nodes)
        rel = "≤" if shards <= self.f else ">"
        return f"{', '.join(nodes)} ({shards} shards {rel} f = {self.f})"

    def scenario(self, name, desc, body):
        say(f"\n== {name}: {desc}")
        sc = dict(name=name, desc=desc, start=now_ms(), end=None, started=time.monotonic())
        self.scenarios.append(sc)
        body()
        sc["end"] = now_ms()
        sc["seconds"] = time.monotonic() - sc["started"]
        self.progress(sc)

    def progress(self, sc):
        ops = [o for o in self.journal() if o["op"] in ("store", "read")
               and sc["start"] <= o["startMs"] < sc["end"]]
        ok = sum(1 for o in ops if o["ok"])
        say(f"   {len(ops)} operations so far in this scenario, {ok} succeeded "
            f"({sc['seconds']:.0f} s)")

    def faulty_nodes(self, name, action, heal, count=None, hold=None, wait_healthy=False):
        """Apply `action` to `count` nodes for `hold` seconds, then `heal` them."""
        m = self.mode
        count = count or self.tolerable()
        hold = hold or m["hold"]
        victims = self.pick(count)
        say(f"   {name} {self.node_desc(victims)} for {hold} s")
        state = {}
        imp = self.impair(f"{name} {','.join(victims)}", victims)
        try:
            # All victims at once: docker calls take about a second each.
            cids = self.parallel(self.container, victims)
            state = dict(zip(victims, self.parallel(action, cids)))
            self.sleep(hold)
        finally:
            self.parallel(heal, [state[v] for v in victims if v in state])
            if wait_healthy:
                self.compose.wait_healthy(deadline_s=90, nodes=set(victims))
            imp["end"] = now_ms()
        return victims

    def sc_baseline(self):
        self.scenario("baseline", f"no fault for {self.mode['baseline']} s",
                      lambda: self.sleep(self.mode["baseline"]))

    def sc_disconnect(self):
        m = self.mode

        def body():
            self.sleep(m["settle"])
            self.faulty_nodes("disconnect", lambda c: self.disconnect(c), self.reconnect)
            self.sleep(m["settle"])
            if "disconnect" in m["beyond_in"]:
                self.faulty_nodes("disconnect", lambda c: self.disconnect(c), self.reconnect,
                                  count=self.beyond(), hold=m["beyond"])
                self.sleep(m["settle"])

        self.scenario("disconnect", "storage nodes cut off every network (docker network "
                      "disconnect), then reconnected", body)

    def sc_pause(self):
        m = self.mode

        def pause(cid):
            docker("pause", cid)
            self.paused.add(cid)
            return cid

        def unpause(cid):
            docker("unpause", cid)
            self.paused.discard(cid)

        def body():
            self.sleep(m["settle"])
            self.faulty_nodes("pause", pause, unpause)
            self.sleep(m["settle"])
            if "pause" in m["beyond_in"]:
                self.faulty_nodes("pause", pause, unpause, count=self.beyond(),
                                  hold=m["beyond"])
                self.sleep(m["settle"])

        self.scenario("pause", "storage nodes frozen (docker pause): connections hang", body)

    def sc_kill(self):
        m = self.mode

        def kill(cid):
            docker("kill", cid)
            return cid

        def start(cid):
            docker("start", cid)

        def body():
            self.sleep(m["settle"])
            self.faulty_nodes("kill", kill, start, wait_healthy=True)
            self.sleep(m["settle"])
            if "kill-restart" in m["beyond_in"]:
                self.faulty_nodes("kill", kill, start, count=self.beyond(), hold=m["beyond"],
                                  wait_healthy=True)
                self.sleep(m["settle"])

        self.scenario("kill-restart", "storage nodes killed (SIGKILL) and started again on "
                      "their volumes", body)

    def sc_partition(self):
        m = self.mode

        def body():
            self.sleep(m["settle"])
            victims = self.pick(self.tolerable())
            clients = [("load", docker("inspect", "-f", "{{.Id}}", self.load_name).stdout
                        .strip())]
            if self.daemon:
                clients.append(("daemon", self.container("daemon")))
            nets = {f"{self.project}_access-{v.split('-')[1]}" for v in victims}
            who = " and ".join(name for name, _ in clients)
            say(f"   {who} cut off from {self.node_desc(victims)} for {m['hold']} s; those "
                "nodes still reach the ledger and their peers")
            imp = self.impair(f"partition {','.join(victims)}", victims)
            cuts = []
            try:
                cuts = self.parallel(lambda c: self.disconnect(c[1], nets), clients)
                self.sleep(m["hold"])
            finally:
                self.parallel(self.reconnect, cuts)
                imp["end"] = now_ms()
            self.sleep(m["settle"])

        who = "the load client and the daemon" if self.daemon else "the load client"
        self.scenario("partition", f"{who} partitioned from a minority of nodes", body)

    def killed_for(self, service, seconds, label, ledger=False, wait_ledger=False):
        """SIGKILL `service`'s container, hold `seconds`, start it again on its volume (waiting
        until the ledger answers if `wait_ledger`); the impairment is recorded as `label`."""
        cid = self.container(service)
        imp = self.impair(label, ledger=ledger)
        try:
            docker("kill", cid)
            self.sleep(seconds)
        finally:
            docker("start", cid, check=False)
            if wait_ledger:
                self.wait_ledger(60)
            imp["end"] = now_ms()
        return imp

    def sc_ledger(self):
        m = self.mode

        def body():
            self.sleep(m["settle"])
            say(f"   ledger killed (SIGKILL) for {m['ledger_down']} s, then started on its "
                "volume")
            imp = self.killed_for("ledger", m["ledger_down"], "ledger down", ledger=True,
                                  wait_ledger=True)
            say(f"   ledger answered again after {(imp['end'] - imp['start']) / 1000:.1f} s")
            self.sleep(m["settle"])

        self.scenario("ledger-restart", "the ledger killed and restarted", body)

    def sc_control_plane(self):
        """--replicated: one control-plane machine at a time fails; nothing may fail with it."""
        m = self.mode
        if not self.compose.replicated:
            raise SystemExit("the control-plane scenario needs --replicated")

        def body():
            self.sleep(m["settle"])
            say(f"   ledger replica `ledger` killed (SIGKILL) for {m['ledger_down']} s, then "
                "started on its volume")
            self.killed_for("ledger", m["ledger_down"], "replica ledger down", wait_ledger=True)
            self.sleep(m["settle"])
            cid = self.container("ledger-1")
            control = [n for n in self.networks_of(cid) if n.endswith("_control")]
            say(f"   ledger replica `ledger-1` partitioned from etcd ({', '.join(control)}) for "
                f"{m['ledger_down']} s")
            imp = self.impair("replica ledger-1 partitioned")
            cut = self.disconnect(cid, networks=control)
            try:
                self.sleep(m["ledger_down"])
            finally:
                self.reconnect(cut)
                imp["end"] = now_ms()
            self.sleep(m["settle"])
            say(f"   etcd member etcd-0 killed (SIGKILL) for {m['ledger_down']} s, then started")
            self.killed_for("etcd-0", m["ledger_down"], "etcd-0 down")
            self.sleep(m["settle"])

        self.scenario("control-plane", "a ledger replica killed, a replica partitioned from "
                      "etcd, an etcd member killed (one at a time)", body)

    def control_plane_failures(self, ops):
        """Operations that failed while the control-plane scenario ran (none are excused)."""
        sc = next((x for x in self.scenarios if x["name"] == "control-plane"), None)
        if sc is None:
            return []
        return [o for o in ops if not o["ok"] and sc["start"] <= o["startMs"] <= sc["end"]]

    # -- verification and report --------------------------------------------------------------

    def verify(self, out_name, source="load.jsonl", blobs=0):
        """`floe load --verify` of the stores in `source`, 4 blobs at a time."""
        timeout = 120 + blobs // 2
        r = self.compose.client(
            "load", "--config", "/client/floe.yaml", "--verify", f"/journal/{source}",
            "--journal", f"/journal/{out_name}", "--attempts", "3", "--op-timeout",
            f"{OP_TIMEOUT_S}s", "--workers", "4", volumes=[f"{self.jdir}:/journal"],
            timeout=timeout, check=False)
        lines = self.journal(out_name)
        summary = next((x for x in lines if x["op"] == "verifySummary"), None)
        if summary is None:
            raise RuntimeError(f"verification did not finish: {r.stdout}{r.stderr}")
        return [x for x in lines if x["op"] == "verify"], summary

    def excused(self, op):
        grace = self.args.grace * 1000
        for imp in self.impairments:
            if not (imp["ledger"] or imp["shards"] > self.f):
                continue
            end = (imp["end"] or now_ms()) + grace
            if op["startMs"] <= end and op["endMs"] >= imp["start"]:
                return True
        return False

    def report(self, ops, verified):
        lost_ids = {v["blobId"] for v in verified if v["lost"]}
        wrong_verify = {v["blobId"] for v in verified if v["wrong"]}
        rows, totals = [], dict(attempted=0, ok=0, failed=0, excused=0, unexcused=0,
                                wrong=0, certified=0, lost=0)
        for k, sc in enumerate(self.scenarios):
            lo = sc["start"] if k else 0
            hi = self.scenarios[k + 1]["start"] if k + 1 < len(self.scenarios) else float("inf")
            mine = [o for o in ops if lo <= o["startMs"] < hi]
            failed = [o for o in mine if not o["ok"]]
            exc = [o for o in failed if not o.get("wrong") and self.excused(o)]
            stored = [o for o in mine if o["op"] == "store" and o["ok"]]
            row = dict(
                attempted=len(mine), ok=len(mine) - len(failed), failed=len(failed),
                excused=len(exc), unexcused=len(failed) - len(exc),
                wrong=sum(1 for o in mine if o.get("wrong"))
                + sum(1 for o in stored if o["blobId"] in wrong_verify),
                certified=len(stored),
                lost=sum(1 for o in stored if o["blobId"] in lost_ids),
                stores=sum(1 for o in mine if o["op"] == "store"),
                reads=sum(1 for o in mine if o["op"] == "read"),
                reads_ok=sum(1 for o in mine if o["op"] == "read" and o["ok"]),
                daemon=sum(1 for o in mine if o.get("via") == "daemon"),
                max_ms=max((o["endMs"] - o["startMs"] for o in mine), default=0),
                unexcused_ops=[o for o in failed if o not in exc],
            )
            rows.append((sc, row))
            for key in totals:
                totals[key] += row[key]
        say("\n" + "=" * 100)
        say(f"Floe chaos suite ({'quick' if self.args.quick else 'full'}), project "
            f"{self.project}: n = {self.n} shards on {len(self.nodes)} nodes, f = {self.f}")
        say(f"{'scenario':<16}{'attempted':>10}{'succeeded':>10}{'failed':>8}"
            f"{'excused':>9}{'unexcused':>10}{'certified':>10}{'lost':>6}{'wrong':>7}"
            f"{'max op s':>10}{'time s':>8}")
        for sc, r in rows:
            say(f"{sc['name']:<16}{r['attempted']:>10}{r['ok']:>10}{r['failed']:>8}"
                f"{r['excused']:>9}{r['unexcused']:>10}{r['certified']:>10}{r['lost']:>6}"
                f"{r['wrong']:>7}{r['max_ms'] / 1000:>10.1f}{sc['seconds']:>8.0f}")
        t = totals
        say(f"{'total':<16}{t['attempted']:>10}{t['ok']:>10}{t['failed']:>8}{t['excused']:>9}"
            f"{t['unexcused']:>10}{t['certified']:>10}{t['lost']:>6}{t['wrong']:>7}")
        say(f"excused: the operation overlapped a time when more than f = {self.f} shards were "
            f"unreachable from the client, or the ledger was down (plus {self.args.grace:g} s "
            "after the heal); certified: stores that succeeded; lost: of those, not readable "
            "at the end; wrong: reads that returned other bytes")
        say("=" * 100)
        for sc, r in rows:
            say(f"[{sc['name']}] {sc['desc']}")
            say(f"    operations attempted {r['attempted']}, succeeded {r['ok']}, failed "
                f"{r['failed']} ({r['excused']} while > f shards were unreachable or the ledger "
                f"was down, {r['unexcused']} otherwise); stores {r['stores']} "
                f"({r['certified']} certified), reads {r['reads']} ({r['reads_ok']} ok)"
                + (f"; {r['daemon']} through the daemon" if r["daemon"] else ""))
            say(f"    certified blobs lost {r['lost']}, wrong reads {r['wrong']}")
            for o in r["unexcused_ops"][:5]:
                say(f"    failure at +{(o['startMs'] - self.load_started) / 1000:.1f} s "
                    f"({o['op']} via {o['via']}, {(o['endMs'] - o['startMs']) / 1000:.1f} s): "
                    f"{o.get('errorKind')}: {(o.get('error') or '')[:300]}")
        return totals

    # -- the run ------------------------------------------------------------------------------

    def run(self):
        self.setup()
        self.start_load()
        t = time.monotonic()
        scenarios = {
            "baseline": self.sc_baseline, "disconnect": self.sc_disconnect,
            "pause": self.sc_pause, "kill-restart": self.sc_kill,
            "partition": self.sc_partition, "ledger-restart": self.sc_ledger,
            "control-plane": self.sc_control_plane,
        }
        default = [n for n in scenarios
                   if n != ("ledger-restart" if self.args.replicated else "control-plane")]
        chosen = self.args.only or default
        for name in chosen:
            scenarios[name]()
        self.timings["scenarios"] = time.monotonic() - t
        t = time.monotonic()
        code, logs = self.stop_load()
        self.save_logs()
        ops = [o for o in self.journal() if o["op"] in ("store", "read")]
        if not any(o["op"] == "summary" for o in self.journal()):
            raise RuntimeError(f"the load did not finish cleanly (exit {code}): {logs}")
        self.timings["load drain"] = time.monotonic() - t
        t = time.monotonic()
        stores = [o for o in ops if o["op"] == "store" and o["ok"]]
        verified, problem = [], None
        try:
            say("\n== verify: read back every certified blob with every node up")
            self.compose.wait_healthy(deadline_s=90)
            verified, summary = self.verify("verify.jsonl", blobs=len(stores))
            say(f"   {summary['certified']} certified blobs, {summary['readBack']} read back "
                f"byte-identical, {summary['lost']} lost, {summary['wrong']} wrong")
            if self.mode["verify_degraded"] or self.args.verify_degraded:
                victims = self.pick(self.tolerable())
                sample = self.rng.sample(stores, min(self.args.degraded_sample, len(stores)))
                with open(os.path.join(self.jdir, "sample.jsonl"), "w") as f:
                    f.writelines(json.dumps(o) + "\n" for o in sample)
                say(f"== verify {len(sample)} random certified blobs again with "
                    f"{self.node_desc(victims)} stopped")
                self.parallel(lambda c: docker("stop", "-t", "3", c),
                              self.parallel(self.container, victims))
                extra, degraded = self.verify("verify-degraded.jsonl", "sample.jsonl",
                                              blobs=len(sample))
                say(f"   {degraded['readBack']} read back, {degraded['lost']} lost, "
                    f"{degraded['wrong']} wrong")
                verified = verified + extra
        except Exception as e:  # still report what the load saw
            problem = f"verification did not complete: {e}"
        self.timings["verify"] = time.monotonic() - t
        totals = self.report(ops, verified)
        if problem:
            say(f"FAIL: {problem}")
            return 2
        bad = totals["lost"] > 0 or totals["wrong"] > 0
        if bad:
            say(f"FAIL: {totals['lost']} certified blobs lost, {totals['wrong']} wrong reads")
            return 1
        cp_failed = self.control_plane_failures(ops)
        if cp_failed:
            say(f"FAIL: {len(cp_failed)} operations failed while one control-plane machine was "
                "down (a replicated control plane must hide that):")
            for o in cp_failed[:10]:
                say(f"   {o['op']} at {o['startMs']}: {str(o.get('error', ''))[:200]}")
            return 1
        if self.args.strict and totals["unexcused"] > 0:
            say(f"FAIL (--strict): {totals['unexcused']} operations failed while at most f "
                "shards were unreachable")
            return 1
        note = (f"; {totals['unexcused']} operations failed while at most f shards were "
                "unreachable (see above)") if totals["unexcused"] else ""
        say(f"PASS: 0 certified blobs lost, 0 wrong reads{note}")
        return 0

    def teardown(self):
        t = time.monotonic()
        if self.args.keep:
            say(f"--keep: leaving project {self.project} up; configuration and journals in "
                f"{self.tmp}; `docker-compose -p {self.project} -f {cluster.COMPOSE_FILE} down -v`"
                " removes it")
            return
        label = f"label=com.docker.compose.project={self.project}"
        try:
            for cid in docker("ps", "-q", "--filter", label, "--filter", "status=paused",
                              check=False).stdout.split():
                docker("unpause", cid, check=False)
            docker("rm", "-f", self.load_name, check=False)
            if self.compose:
                self.compose.down(quiet=True)
            for cid in docker("ps", "-aq", "--filter", label, check=False).stdout.split():
                docker("rm", "-f", "-v", cid, check=False)
            for net in docker("network", "ls", "-q", "--filter", label,
                              check=False).stdout.split():
                docker("network", "rm", net, check=False)
            for vol in docker("volume", "ls", "-q", "--filter", label,
                              check=False).stdout.split():
                docker("volume", "rm", "-f", vol, check=False)
        except Exception as e:  # keep going: the directory still has to go
            say(f"teardown: {e}")
        left = docker("ps", "-aq", "--filter", label, check=False).stdout.split()
        nets = docker("network", "ls", "-q", "--filter", label, check=False).stdout.split()
        if self.tmp and not self.args.keep_dir:
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp:
            say(f"journals and configuration kept in {self.tmp}")
        self.timings["teardown"] = time.monotonic() - t
        say(f"teardown: {len(left)} containers and {len(nets)} networks of {self.project} left")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short holds (CI): about 4-6 minutes")
    p.add_argument("--image", help="use this image instead of building one from --binary")
    p.add_argument("--binary", help="the release floe (default: $CARGO_TARGET_DIR or target/)")
    p.add_argument("--seed", type=int, default=int(time.time()) % 100000,
                   help="chooses the victims and the blob contents")
    p.add_argument("--n-shards", type=int, default=70)
    p.add_argument("--only", nargs="+", choices=["baseline", "disconnect", "pause",
                                                 "kill-restart", "partition", "ledger-restart",
                                                 "control-plane"],
                   help="run only these scenarios, in this order")
    p.add_argument("--replicated", action="store_true",
                   help="the control plane as 3 ledger replicas over 3 etcd members "
                        "(docker-compose.replicated.yaml); runs `control-plane` instead of "
                        "`ledger-restart`, and fails if any operation fails during it")
    p.add_argument("--grace", type=float, default=3.0,
                   help="seconds after a heal during which failures are still excused")
    p.add_argument("--strict", action="store_true",
                   help="also fail when an operation failed while at most f shards were "
                        "unreachable")
    p.add_argument("--verify-degraded", action="store_true",
                   help="also verify a sample with f shards' worth of nodes stopped (on in full "
                        "mode)")
    p.add_argument("--load-log", metavar="FILTER",
                   help="RUST_LOG of the load container, e.g. floe_client=debug (its stderr is "
                        "saved as load.log with the journals; see --keep-dir)")
    p.add_argument("--degraded-sample", type=int, default=200,
                   help="blobs read in the degraded verification (default 200)")
    p.add_argument("--no-daemon", action="store_true", help="do not start the daemon")
    p.add_argument("--project", help="compose project name (default: unique)")
    p.add_argument("--keep", action="store_true", help="leave the cluster up at the end")
    p.add_argument("--keep-dir", action="store_true", help="keep the journals directory")
    p.add_argument("--time-limit", type=int, help="hard bound in seconds (default per mode)")
    args = p.parse_args()

    suite = Suite(args)
    limit = args.time_limit or suite.mode["limit"]

    def interrupt(signum, _frame):
        raise Interrupted(f"signal {signal.Signals(signum).name}"
                          + (f": over the {limit} s bound" if signum == signal.SIGALRM else ""))

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGHUP):
        signal.signal(s, interrupt)
    signal.alarm(limit)
    started = time.monotonic()
    rc = 2
    try:
        rc = suite.run()
    except Interrupted as e:
        say(f"\ninterrupted ({e}); cleaning up")
        rc = 3
    except (Exception, SystemExit) as e:
        if isinstance(e, SystemExit):
            say(f"error: {e}")
        else:
            traceback.print_exc()
        rc = 2
    finally:
        signal.alarm(0)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        suite.teardown()
    suite.timings["total"] = time.monotonic() - started
    say("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in suite.timings.items()))
    sys.exit(rc)


if __name__ == "__main__":
    main()
