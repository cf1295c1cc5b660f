#!/usr/bin/env python3
"""Build the Floe image and run a local multi-host Floe cluster with Docker Compose.

    python3 docker/cluster.py build-image [--binary PATH] [--tag floe:local]
    python3 docker/cluster.py init [--dir docker/cluster] [--n-shards 70] [--epoch-duration 1h]
    python3 docker/cluster.py up [--daemon]       # build-image + init (if needed) + compose up
    python3 docker/cluster.py up --replicated     # the control plane as 3 etcd members and 3
                                                   # ledger replicas (docker-compose.replicated.yaml)
    python3 docker/cluster.py client ARGS...       # `floe ARGS` in the cluster network (the
                                                   # current directory is mounted as /work)
    python3 docker/cluster.py down                 # stop, and remove containers, networks, volumes

The image is built FROM scratch out of the release binary and the shared libraries it links (as
`ldd` lists them), so nothing is pulled. When the host has `etcd` (Debian's etcd-server), the
image carries it too, as /etcd, for the replicated control plane. Only the Python standard library is used; chaos.py
imports this module.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
COMPOSE_FILE = os.path.join(HERE, "docker-compose.yaml")
REPLICATED_FILE = os.path.join(HERE, "docker-compose.replicated.yaml")
# The replicated control plane's services (docker-compose.replicated.yaml).
LEDGER_REPLICAS = ["ledger", "ledger-1", "ledger-2"]
ETCD_MEMBERS = ["etcd-0", "etcd-1", "etcd-2"]
# A cluster directory written by `init --replicated` holds this file.
REPLICATED_MARKER = "replicated"
ETCD_MISSING = ("the replicated control plane needs the `etcd` binary on this host, to put into "
                "the image: `apt-get install etcd-server` (then build the image again)")
DEFAULT_TAG = "floe:local"
DEFAULT_DIR = os.path.join(HERE, "cluster")
DEFAULT_PROJECT = "floe"
# docker-compose.yaml has exactly these services; keep the two in step.
NODES = 7
NODE_PORT = 9185
LEDGER_PORT = 9100
DAEMON_PORT = 31415
LABEL = "floe.binary.sha256"
# `floe` commands that talk to the network and so take the cluster's client config.
NETWORK_COMMANDS = {"store", "write", "read", "blob-status", "info", "list-blobs", "delete",
                    "extend", "health", "load"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, check=True, capture=False, env=None, timeout=None, quiet=False):
    """Run a command (a list); return the CompletedProcess. Output is captured as text."""
    if not quiet:
        log("+ " + " ".join(cmd))
    return subprocess.run(
        cmd,
        check=check,
        env=env,
        timeout=timeout,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        text=True,
    )


# ---------------------------------------------------------------------------------------------
# The image


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    if not os.path.isabs(target):
        target = os.path.join(REPO, target)
    return os.path.join(target, "release", "floe")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def linked_files(binary):
    """The dynamic loader and the shared libraries `ldd` lists for `binary` (absolute paths)."""
    out = run(["ldd", binary], capture=True, check=False, quiet=True)
    text = (out.stdout or "") + (out.stderr or "")
    if "not a dynamic executable" in text or "statically linked" in text:
        return []
    if out.returncode != 0:
        raise SystemExit(f"ldd {binary} failed: {text.strip()}")
    files = []
    for line in text.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" (")[0].strip()
            if target == "not found":
                raise SystemExit(f"ldd: a library of {binary} is missing: {line}")
            if target.startswith("/"):
                files.append(target)
        elif line.startswith("/"):
            files.append(line.split(" (")[0].strip())  # the loader
    return files


def image_label(tag):
    out = run(
        ["docker", "image", "inspect", "--format", "{{index .Config.Labels \"%s\"}}" % LABEL, tag],
        capture=True,
        check=False,
        quiet=True,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def build_image(binary=None, tag=DEFAULT_TAG, force=False):
    """Build `tag` from `binary` unless an image of that very binary exists. Returns the tag.

    With tag None the tag is `floe:bin-<first 12 hex digits of the binary's SHA-256>`, so runs
    of different binaries (other work trees, concurrent sessions) never overwrite each other.
    """
    binary = os.path.abspath(binary or default_binary())
    if not os.path.isfile(binary):
        raise SystemExit(
            f"no floe binary at {binary}: run `cargo build --release -p floe-cli` first "
            "(or pass --binary PATH)"
        )
    digest = sha256_file(binary)
    etcd = shutil.which("etcd")
    if etcd:
        etcd = os.path.realpath(etcd)
        digest = f"{digest}+etcd-{sha256_file(etcd)[:16]}"
    tag = tag or f"floe:bin-{digest[:12]}"
    if not force and image_label(tag) == digest:
        log(f"image {tag} is up to date with {binary}")
        return tag
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="floe-image-") as ctx:
        rootfs = os.path.join(ctx, "rootfs")
        os.makedirs(os.path.join(rootfs, "tmp"))
        os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
        dest = os.path.join(rootfs, "floe")
        # Debug info is most of the binary; symbols stay, so backtraces keep their names.
        if shutil.which("objcopy"):
            run(["objcopy", "--strip-debug", binary, dest], quiet=True)
        else:
            shutil.copyfile(binary, dest)
        os.chmod(dest, 0o755)
        extra = [etcd] if etcd else []
        if etcd:
            shutil.copyfile(etcd, os.path.join(rootfs, "etcd"))
            os.chmod(os.path.join(rootfs, "etcd"), 0o755)
        for path in sorted({p for b in [binary, *extra] for p in linked_files(b)}):
            target = os.path.join(rootfs, path.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(path, target)  # follows symlinks: the real file lands at `path`
            os.chmod(target, 0o755)
        shutil.copyfile(os.path.join(HERE, "Dockerfile"), os.path.join(ctx, "Dockerfile"))
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        run(
            ["docker", "build", "--quiet", "--label", f"{LABEL}={digest}", "-t", tag, ctx],
            env=env,
            capture=True,
        )
    log(f"built image {tag} from {binary}{' and ' + etcd if etcd else ''} in "
        f"{time.monotonic() - started:.1f} s")
    return tag


def image_has_etcd(image):
    """Whether `image` carries /etcd (see build_image)."""
    out = run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "/etcd", image,
               "--version"], capture=True, check=False, quiet=True)
    return out.returncode == 0


def is_replicated(directory):
    return os.path.exists(os.path.join(os.path.abspath(directory), REPLICATED_MARKER))


# ---------------------------------------------------------------------------------------------
# Cluster configuration


NODE_TOML = """\
# Storage node {i} of the Docker cluster (generated by docker/cluster.py).
storage_path = "/data"
keys_path = "/cluster/keys/node-{i}.json"
listen_address = "0.0.0.0:{port}"
ledger_urls = [{ledger_urls_toml}]

[tls]
disable_tls = {disable_tls}

[limits]
sync_delay_ms = 2000
maintenance_interval_secs = {maintenance}
"""

CLIENT_YAML = """\
# Client config inside the Docker cluster network (generated by docker/cluster.py).
ledger_urls:
{ledger_urls_yaml}
wallet: wallet.json
communication:
  request_timeout_ms: {request_timeout_ms}
  connect_timeout_ms: 2000
"""


def init(directory=DEFAULT_DIR, image=DEFAULT_TAG, n_shards=70, epoch_duration="1h",
         maintenance_secs=10, request_timeout_ms=10000, force=False, tls=True,
         replicated=False):
    """Write genesis, node keys, node configs and client configs for the compose cluster.

    `floe ledger init --generate` names nodes node-0… but gives them 127.0.0.1 addresses, so
    the addresses are rewritten to the compose host names (`node-<i>:9185`) afterwards; the
    proofs of possession sign the owner address, not the network address, so they stay valid.
    With `replicated`, nodes and clients are given all three ledger replicas.
    """
    directory = os.path.abspath(directory)
    genesis = os.path.join(directory, "genesis.json")
    if os.path.exists(genesis) and not force:
        if is_replicated(directory) != replicated:
            want, have = ("replicated", "single") if replicated else ("single", "replicated")
            raise SystemExit(
                f"{directory} holds a {have}-ledger configuration and a {want} one was asked "
                "for: pass --force to replace it (after `cluster.py down`)")
        log(f"{genesis} exists; keeping the cluster configuration (use --force to replace it)")
        return directory
    if os.path.exists(directory) and force:
        shutil.rmtree(directory)
    os.makedirs(directory, exist_ok=True)
    run(
        [
            "docker", "run", "--rm", "--network", "none", "-v", f"{directory}:/cluster", image,
            "ledger", "init", "--generate", str(NODES), "--n-shards", str(n_shards),
            "--epoch-duration", epoch_duration, "--keys-dir", "/cluster/keys",
            "--out", "/cluster/genesis.json",
        ],
        capture=True,
    )
    with open(genesis) as f:
        config = json.load(f)
    for i, node in enumerate(config["nodes"]):
        if node["name"] != f"node-{i}":
            raise SystemExit(f"unexpected node name {node['name']!r} in {genesis}")
        node["networkAddress"] = f"node-{i}:{NODE_PORT}"
        if not tls:
            # --disable-tls: no network key registered, so clients speak http:// to the nodes
            # (by default they pin each node's key over HTTPS).
            node["networkPublicKey"] = None
    with open(genesis, "w") as f:
        json.dump(config, f, indent=2)
    ledgers = [f"http://{r}:{LEDGER_PORT}" for r in (LEDGER_REPLICAS if replicated
                                                      else LEDGER_REPLICAS[:1])]
    if replicated:
        with open(os.path.join(directory, REPLICATED_MARKER), "w") as f:
            f.write("ledger replicas: " + " ".join(ledgers) + "\n")
    for i in range(NODES):
        path = os.path.join(directory, "keys", f"node-{i}.json")
        with open(path) as f:
            keys = json.load(f)
        keys["networkAddress"] = f"node-{i}:{NODE_PORT}"
        with open(path, "w") as f:
            json.dump(keys, f, indent=2)
        os.chmod(path, 0o644)  # read by the node containers through a read-only mount
        with open(os.path.join(directory, f"node-{i}.toml"), "w") as f:
            f.write(NODE_TOML.format(i=i, port=NODE_PORT,
                                     ledger_urls_toml=", ".join(f'"{u}"' for u in ledgers),
                                     maintenance=maintenance_secs,
                                     disable_tls="false" if tls else "true"))
    for who in ("client", "daemon"):
        os.makedirs(os.path.join(directory, who), exist_ok=True)
        with open(os.path.join(directory, who, "floe.yaml"), "w") as f:
            f.write(CLIENT_YAML.format(ledger_urls_yaml="\n".join(f"  - {u}" for u in ledgers),
                                       request_timeout_ms=request_timeout_ms))
    log(f"cluster configuration in {directory}: {NODES} nodes, {n_shards} shards, "
        + ("3 ledger replicas over 3 etcd members" if replicated else "one ledger"))
    return directory


# ---------------------------------------------------------------------------------------------
# Compose


def compose_command():
    """`docker compose` (v2) if present, else `docker-compose` (v1)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise SystemExit("neither `docker compose` nor `docker-compose` is installed")


def node_ok(row):
    """Whether a `floe health --json` row is a node that answered."""
    h = row.get("health")
    return isinstance(h, dict) and "error" not in h


class Compose:
    """One compose project of docker-compose.yaml."""

    def __init__(self, project=DEFAULT_PROJECT, cluster_dir=DEFAULT_DIR, image=DEFAULT_TAG,
                 daemon=False, ledger_port=str(LEDGER_PORT), daemon_port=str(DAEMON_PORT)):
        # The control plane's shape is the configuration's (see init).
        self.replicated = is_replicated(cluster_dir)
        files = ["-f", COMPOSE_FILE] + (["-f", REPLICATED_FILE] if self.replicated else [])
        self.base = compose_command() + files + ["-p", project]
        self.project = project
        self.profiles = ["daemon"] if daemon else []
        self.env = dict(
            os.environ,
            FLOE_IMAGE=image,
            FLOE_CLUSTER_DIR=os.path.abspath(cluster_dir),
            FLOE_LEDGER_PORT=ledger_port,
            FLOE_DAEMON_PORT=daemon_port,
            COMPOSE_PROFILES=",".join(self.profiles),
        )

    def __call__(self, *args, check=True, capture=False, timeout=None, quiet=False):
        return run(self.base + list(args), check=check, capture=capture, env=self.env,
                   timeout=timeout, quiet=quiet)

    def container(self, service):
        """The ID of a service's (first) container, or None."""
        out = self("ps", "-q", service, capture=True, check=False, quiet=True)
        ids = out.stdout.split()
        return ids[0] if ids else None

    def client(self, *args, capture=True, timeout=120, volumes=(), detach=False, name=None,
               check=True, env=None, workdir=None):
        """`floe ARGS` in a one-off container of the `client` service."""
        cmd = ["run", "--rm", "--no-deps"] if not detach else ["run", "-d", "--no-deps"]
        if name:
            cmd += ["--name", name]
        if workdir:
            cmd += ["-w", workdir]
        for v in volumes:
            cmd += ["-v", v]
        for k, v in (env or {}).items():
            cmd += ["-e", f"{k}={v}"]
        return self(*cmd, "client", *args, capture=capture, timeout=timeout, check=check,
                    quiet=True)

    def health(self, timeout=60):
        """Each node's health as `floe health --json` reports it through the client network."""
        out = self.client("health", "--json", "--config", "/client/floe.yaml",
                          timeout=timeout, check=False)
        if out.returncode != 0:
            return None
        try:
            start = out.stdout.index("[")
            return json.loads(out.stdout[start:])
        except ValueError:
            return None

    def wait_healthy(self, deadline_s=120, nodes=None):
        """Wait until the ledger answers and every node (or every node in `nodes`) is healthy."""
        end = time.monotonic() + deadline_s
        rows = None
        while time.monotonic() < end:
            rows = self.health(timeout=max(10, int(end - time.monotonic())))
            if rows:
                bad = [r["name"] for r in rows
                       if (nodes is None or r["name"] in nodes) and not node_ok(r)]
                if not bad:
                    return rows
            time.sleep(1)
        raise TimeoutError(f"the cluster was not healthy within {deadline_s} s: {rows}")

    def down(self, quiet=False):
        out = self("down", "-v", "--remove-orphans", "-t", "3", check=False, timeout=180,
                   capture=quiet, quiet=quiet)
        if quiet and out.returncode != 0:
            log(f"compose down failed: {out.stdout}{out.stderr}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-image", help="build the image from the release binary")
    b.add_argument("--binary", help="default: $CARGO_TARGET_DIR or target/, release/floe")
    b.add_argument("--tag", default=DEFAULT_TAG)
    b.add_argument("--force", action="store_true", help="rebuild even if up to date")
    i = sub.add_parser("init", help="write the cluster configuration")
    u = sub.add_parser("up", help="build-image and init if needed, then start the cluster")
    for q in (i, u):
        q.add_argument("--dir", default=DEFAULT_DIR)
        q.add_argument("--image", default=DEFAULT_TAG)
        q.add_argument("--n-shards", type=int, default=70)
        q.add_argument("--epoch-duration", default="1h")
        q.add_argument("--force", action="store_true", help="replace an existing configuration")
        q.add_argument("--disable-tls", action="store_true",
                       help="nodes serve plain HTTP and register no network key (default: "
                            "HTTPS with each node's registered network key, as in Walrus)")
        q.add_argument("--replicated", action="store_true",
                       help="the control plane as 3 etcd members and 3 ledger replicas, each "
                            "in its own container (needs `etcd` on this host for the image)")
    u.add_argument("--binary")
    u.add_argument("--daemon", action="store_true", help="also start the daemon (floe daemon)")
    u.add_argument("--project", default=DEFAULT_PROJECT)
    c = sub.add_parser("client", help="run `floe ARGS` in the cluster network")
    c.add_argument("args", nargs=argparse.REMAINDER)
    d = sub.add_parser("down", help="stop the cluster and delete its containers, networks, volumes")
    for q in (c, d):
        q.add_argument("--dir", default=DEFAULT_DIR)
        q.add_argument("--image", default=DEFAULT_TAG)
        q.add_argument("--project", default=DEFAULT_PROJECT)
    a = p.parse_args()
    if a.cmd == "build-image":
        build_image(a.binary, a.tag, a.force)
    elif a.cmd == "init":
        init(a.dir, a.image, a.n_shards, a.epoch_duration, force=a.force, tls=not a.disable_tls,
             replicated=a.replicated)
    elif a.cmd == "up":
        if a.replicated and a.image == DEFAULT_TAG and not shutil.which("etcd"):
            raise SystemExit(ETCD_MISSING)
        if a.image == DEFAULT_TAG:
            build_image(a.binary, a.image)
        if a.replicated and not image_has_etcd(a.image):
            raise SystemExit(f"image {a.image} has no /etcd: {ETCD_MISSING}")
        init(a.dir, a.image, a.n_shards, a.epoch_duration, force=a.force, tls=not a.disable_tls,
             replicated=a.replicated)
        compose = Compose(a.project, a.dir, a.image, daemon=a.daemon)
        compose("up", "-d")
        rows = compose.wait_healthy()
        if compose.replicated:
            log("control plane: ledger replicas " + ", ".join(LEDGER_REPLICAS)
                + " over etcd members " + ", ".join(ETCD_MEMBERS))
        for r in rows:
            h = r["health"]
            log(f"  {r['name']:<8} {r['address']:<12} {r['shards']:>3} shards  "
                f"{h.get('nodeStatus', '?')}")
        log(f"cluster up (project {a.project}); ledger on http://127.0.0.1:{LEDGER_PORT}")
    elif a.cmd == "client":
        compose = Compose(a.project, a.dir, a.image)
        args = a.args[1:] if a.args[:1] == ["--"] else a.args
        if args[:1] and args[0] in NETWORK_COMMANDS:
            args = [*args, "--config", "/client/floe.yaml"]
        # The current directory is /work in the container, so relative file names work.
        r = compose.client(*args, capture=False,
                           timeout=None, check=False, volumes=[f"{os.getcwd()}:/work"],
                           workdir="/work")
        sys.exit(r.returncode)
    elif a.cmd == "down":
        Compose(a.project, a.dir, a.image, daemon=True).down()


if __name__ == "__main__":
    main()
