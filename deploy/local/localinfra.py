#!/usr/bin/env python3
"""Real Kafka and a real Mongo-wire store on a machine without Docker.

Kafka: the broker jars are resolved from Maven Central by Maven (pom.xml beside
this file), cached, and one combined broker+controller (KRaft, static quorum)
is started with the JDK. Mongo-wire: FerretDB v1 (SQLite backend) is built from
the Go module proxy (our own tiny main embedding the `ferretdb` package) and
cached.

Standard library only: this runs before any Python dependency is installed.

    python3 deploy/local/localinfra.py {kafka,ferretdb,all} {install,start,stop,status}

Every command is idempotent. Settings (environment):
    DELEGO_CACHE_DIR        jars and binary (default ~/.cache/delego)
    DELEGO_STATE_DIR        data, logs, pid files (default <repo>/.delego/local)
    DELEGO_LOCAL_KAFKA_PORT       (default 9092; the controller uses port+1)
    DELEGO_LOCAL_MONGO_PORT       (default 27017)
    DELEGO_LOCAL_KAFKA_SASL_USERS a JSON file {"admin": "<password>", "<user>": ...}:
                                  Kafka as in production (SASL_PLAINTEXT, SCRAM-SHA-512,
                                  ACLs; `admin` is the super user); unset: PLAINTEXT
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
KAFKA_VERSION = "4.1.1"
FERRETDB_VERSION = "v1.24.2"
# our build patches FerretDB (FERRETDB_FILES, FERRETDB_EDITS); bump when the patch changes
FERRETDB_BUILD = f"{FERRETDB_VERSION}-delego6"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
# The patch. Each copied file starts with a comment saying what it does and why:
# - ferretdb/write_lock.go.txt: single-document writes are atomic, through one
#   lock per (database, collection) held by update, findAndModify and delete;
# - ferretdb/id_pushdown.go.txt: _id point operations use the unique _id index
#   (the index-matching IDColumn; an _id equality or `$in` pushed down
#   whatever the filter's other keys);
# - ferretdb/no_tracking.go.txt: FerretDB's leak detector for its own tests
#   (a stack walk and a finalizer per iterator and transaction) is off;
# - ferretdb/stmt_cache.go.txt: statements are prepared once per text and reused
#   (database/sql's *sql.Stmt; our go.mod requires modernc.org/sqlite v1.62, whose
#   prepared statements keep their handle between executions);
# - ferretdb/one_statement.go.txt: an insert or update that is one SQL statement
#   runs without BEGIN/COMMIT around it (SQLite's implicit transaction);
# - ferretdb/checkpoint.go.txt: SQLite checkpoints its write-ahead log in a
#   goroutine per database woken by its writes, not inside the commit that
#   fills the log (its fsyncs stalled commands for seconds on a slow disk);
# - the stored-document codec (internal/handler/sjson) decodes with
#   github.com/goccy/go-json, a drop-in for encoding/json (its own tests pass
#   but for the wording of errors on malformed input): decoding stored documents
#   was a third of the store's CPU; 2.5x faster on our documents, encoding 1.5x.
# main.go (ours, not a patch) also keeps debug-level log fields unformatted
# unless written, and sets the garbage collector to 400 % (see its comments).
FERRETDB_FILES = {
    "write_lock.go.txt": "internal/handler/delego_write_lock.go",
    "id_pushdown.go.txt": "internal/backends/sqlite/delego_id_pushdown.go",
    "no_tracking.go.txt": "internal/util/resource/delego_no_tracking.go",
    "stmt_cache.go.txt": "internal/util/fsql/delego_stmt_cache.go",
    "one_statement.go.txt": "internal/util/fsql/delego_one_statement.go",
    "checkpoint.go.txt": "internal/util/fsql/delego_checkpoint.go",
}
# the read-modify-write commands take their collection's lock (write_lock.go.txt)
_LOCK = "\tdefer delegoLockCollection(params.DB, params.Collection)()\n\n"
_UPDATE = (
    "func (h *Handler) updateDocument(ctx context.Context, params *common.UpdateParams)"
    " (int32, int32, *types.Array, error) {\n"
)
_FIND_AND_MODIFY = (
    "func (h *Handler) findAndModifyDocument(ctx context.Context,"
    " params *common.FindAndModifyParams) (*findAndModifyResult, error) {\n"
)
_DELETE = "\tfor i, p := range params.Deletes {\n"  # in MsgDelete, around its execDelete calls
# the _id index and pushdown (id_pushdown.go.txt)
_ID_COLUMN = "IDColumn = DefaultColumn + \"->'$._id'\""
_ID_SWITCH = (
    '\t\tv, _ := params.Filter.Get("_id")\n'
    "\t\tswitch v.(type) {\n"
    "\t\tcase string, types.ObjectID:\n"
)
_ID_WHERE = (
    "\t\t\twhereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)\n"
    "\t\t\targs = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}\n"
    "\t\t}\n\t}\n"
)
_QUERY_PUSHDOWN = "\tif params.Filter.Len() == 1 {\n" + _ID_SWITCH + _ID_WHERE
_EXPLAIN_PUSHDOWN = (
    "\tif params.Filter.Len() == 1 {\n" + _ID_SWITCH + "\t\t\tfilterPushdown = true\n" + _ID_WHERE
)
_OUR_PUSHDOWN = (
    "\t// delego: the _id equality or $in, whatever the filter's other keys\n"
    "\twhereClause, args = delegoIDWhere(params.Filter)\n"
)
# kept statements (stmt_cache.go.txt)
_DB_FIELDS = "\tBatchSize int\n}\n"
_TX_FIELDS = "\ttoken *resource.Token\n}\n"
_WRAP_TX = "\ttx := wrapTx(sqlTx, db.l)\n"
_DB_QUERY = "\trows, err := db.sqlDB.QueryContext(ctx, query, args...)\n"
_DB_EXEC = "\tres, err := db.sqlDB.ExecContext(ctx, query, args...)\n"
_TX_EXEC = "\tres, err := tx.sqlTx.ExecContext(ctx, query, args...)\n"
_KEPT_QUERY = _DB_QUERY.replace("db.sqlDB.QueryContext", "db.delegoQuery")
_KEPT_EXEC = _DB_EXEC.replace("db.sqlDB.ExecContext", "db.delegoExec")
_KEPT_TX_EXEC = _TX_EXEC.replace("tx.sqlTx.ExecContext", "tx.delegoExec")
# one statement, no explicit transaction (one_statement.go.txt)
_IN_TX = "\terr := db.InTransaction(ctx, func(tx *fsql.Tx) error {\n"
_INSERT_TX = _IN_TX + "\t\tbatchSize := c.r.BatchSize\n"
_UPDATE_TX = _IN_TX + "\t\tfor _, doc := range params.Docs {\n"
_ONE_INSERT = (
    "\tn := fsql.DelegoStatements(len(params.Docs), c.r.BatchSize)\n"
    "\terr := db.DelegoInTransaction(ctx, n, func(tx fsql.DelegoExecer) error {\n"
    "\t\tbatchSize := c.r.BatchSize\n"
)
_ONE_UPDATE = (
    "\terr := db.DelegoInTransaction(ctx, len(params.Docs), func(tx fsql.DelegoExecer) error {\n"
    "\t\tfor _, doc := range params.Docs {\n"
)
# resource tracking off (no_tracking.go.txt)
_TRACK = "func Track(obj any, token *Token) {\n"
_UNTRACK = "func Untrack(obj any, token *Token) {\n"
_NO_TRACKING = "\tif delegoNoTracking {\n\t\treturn\n\t}\n\n"
# the sjson files that import encoding/json (all but null.go)
_SJSON_FILES = (
    *("array", "binary", "bool", "datetime", "document", "double", "int32", "int64"),
    *("object_id", "regex", "schema", "sjson", "string", "timestamp"),
)
_STD_JSON = '\t"encoding/json"\n'
_GO_JSON = '\tjson "github.com/goccy/go-json" // delego: a faster drop-in\n'
# checkpoints in the background (checkpoint.go.txt)
_AUTO_VACUUM = "\tif !autoVacuum {\n"
_NO_AUTOCHECKPOINT = (
    '\tvalues.Add("_pragma", "wal_autocheckpoint(0)") // delego: see delego_checkpoint.go\n\n'
)
_WRAP_DB = "\treturn fsql.WrapDB(db, name, l), nil\n"
_CHECKPOINTER = (
    "\tfdb := fsql.WrapDB(db, name, l)\n"
    "\tif !memory {\n\t\tfdb.DelegoCheckpointInBackground() // delego\n\t}\n\n"
    "\treturn fdb, nil\n"
)
_DB_CLOSE = "func (db *DB) Close() error {\n"
# (file, upstream text, our text, times it must occur); the build stops when
# upstream text is not found exactly that many times
FERRETDB_EDITS: list[tuple[str, str, str, int]] = [
    *((f"internal/handler/sjson/{name}.go", _STD_JSON, _GO_JSON, 1) for name in _SJSON_FILES),
    ("internal/handler/msg_update.go", _UPDATE, _UPDATE + _LOCK, 1),
    ("internal/handler/msg_findandmodify.go", _FIND_AND_MODIFY, _FIND_AND_MODIFY + _LOCK, 1),
    ("internal/handler/msg_delete.go", _DELETE, _LOCK + _DELETE, 1),
    (
        "internal/backends/sqlite/metadata/metadata.go",
        _ID_COLUMN,
        "IDColumn = DefaultColumn + \"->'_id'\" // delego: the _id index expression",
        1,
    ),
    ("internal/backends/sqlite/collection.go", _QUERY_PUSHDOWN, _OUR_PUSHDOWN, 1),
    (
        "internal/backends/sqlite/collection.go",
        _EXPLAIN_PUSHDOWN,
        _OUR_PUSHDOWN + '\tfilterPushdown = whereClause != ""\n',
        1,
    ),
    (
        "internal/util/fsql/db.go",
        _DB_FIELDS,
        "\tBatchSize int\n\n\tdelegoStmts delegoStmtCache // delego: kept statements\n"
        "\tdelegoCkpt  delegoCheckpoints // delego: background checkpoints\n}\n",
        1,
    ),
    ("internal/util/fsql/tx.go", _TX_FIELDS, "\ttoken *resource.Token\n\tdelegoDB *DB\n}\n", 1),
    ("internal/util/fsql/db.go", _WRAP_TX, _WRAP_TX + "\ttx.delegoDB = db\n", 1),
    ("internal/util/fsql/db.go", _DB_QUERY, _KEPT_QUERY, 1),
    ("internal/util/fsql/db.go", _DB_EXEC, _KEPT_EXEC, 1),
    ("internal/util/fsql/tx.go", _TX_EXEC, _KEPT_TX_EXEC, 1),
    ("internal/backends/sqlite/collection.go", _INSERT_TX, _ONE_INSERT, 1),
    ("internal/backends/sqlite/collection.go", _UPDATE_TX, _ONE_UPDATE, 1),
    ("internal/util/resource/resource.go", _TRACK, _TRACK + _NO_TRACKING, 1),
    ("internal/util/resource/resource.go", _UNTRACK, _UNTRACK + _NO_TRACKING, 1),
    (
        "internal/backends/sqlite/metadata/pool/uri.go",
        _AUTO_VACUUM,
        _NO_AUTOCHECKPOINT + _AUTO_VACUUM,
        1,
    ),
    ("internal/backends/sqlite/metadata/pool/opendb.go", _WRAP_DB, _CHECKPOINTER, 1),
    ("internal/util/fsql/db.go", _DB_CLOSE, _DB_CLOSE + "\tdb.delegoStopCheckpoints()\n", 1),
]


class InfraError(RuntimeError):
    """A clear, actionable failure (missing toolchain, port taken, not ready)."""


@dataclass(frozen=True)
class Layout:
    cache: Path
    state: Path
    kafka_port: int
    mongo_port: int
    kafka_sasl_users: Path | None = None

    @classmethod
    def from_env(
        cls,
        state: str | None = None,
        kafka_port: int | None = None,
        mongo_port: int | None = None,
        kafka_sasl_users: str | None = None,
    ) -> Layout:
        env = os.environ
        users = kafka_sasl_users or env.get("DELEGO_LOCAL_KAFKA_SASL_USERS")
        return cls(
            cache=Path(env.get("DELEGO_CACHE_DIR", Path.home() / ".cache" / "delego")),
            state=Path(state or env.get("DELEGO_STATE_DIR", REPO / ".delego" / "local")).resolve(),
            kafka_port=kafka_port or int(env.get("DELEGO_LOCAL_KAFKA_PORT", "9092")),
            mongo_port=mongo_port or int(env.get("DELEGO_LOCAL_MONGO_PORT", "27017")),
            kafka_sasl_users=Path(users).resolve() if users else None,
        )

    @property
    def kafka_libs(self) -> Path:
        return self.cache / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def ferretdb_bin(self) -> Path:
        return self.cache / f"ferretdb-{FERRETDB_BUILD}" / "ferretdb"


def log(msg: str) -> None:
    print(f"[localinfra] {msg}", flush=True)


def require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise InfraError(f"'{tool}' not found on PATH: {hint}")
    return path


def new_cluster_id() -> str:
    """A KRaft cluster id the Kafka tools accept, drawn as Kafka's `Uuid.randomUuid` draws it.

    An id is the URL-safe base64 of 16 random bytes; one that starts with `-`
    is read as an option by the tools' argument parser (about 1 in 64), so
    Kafka itself redraws those, and so do we.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); look at its state
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class Component:
    name: str

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.dir = layout.state / self.name
        self.pidfile = self.dir / f"{self.name}.pid"
        self.logfile = self.dir / f"{self.name}.log"

    # --- to implement -------------------------------------------------
    def install(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write config / format storage before the first start."""

    def ready(self) -> bool:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

    def url(self) -> str:
        raise NotImplementedError

    # --- shared lifecycle ---------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def start(self, timeout: float = 120.0) -> None:
        self.install()
        if self.pid() is not None:
            self.wait_ready(timeout)
            log(f"{self.name} already running (pid {self.pid()}) at {self.url()}")
            return
        if port_open(self.port):
            raise InfraError(
                f"{self.name}: port {self.port} is already taken by another process; "
                f"stop it or choose another port (see --help)"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with open(self.logfile, "ab") as out:
            proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.dir,
            )
        self.pidfile.write_text(str(proc.pid))
        try:
            self.wait_ready(timeout, proc)
        except InfraError:
            self.stop()
            raise
        log(f"{self.name} ready (pid {proc.pid}) at {self.url()}; log: {self.logfile}")

    def wait_ready(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise InfraError(
                    f"{self.name} exited with code {proc.returncode} during start; "
                    f"last log lines:\n{self.tail()}"
                )
            if self.ready():
                return
            time.sleep(0.3)
        raise InfraError(
            f"{self.name} not ready after {timeout:.0f}s; last log lines:\n{self.tail()}"
        )

    def tail(self, n: int = 25) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            log(f"{self.name} not running")
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.2)
        if pid_alive(pid):
            log(f"{self.name} did not stop in {timeout:.0f}s; killing")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        log(f"{self.name} stopped")

    def status(self) -> dict[str, object]:
        pid = self.pid()
        return {
            "component": self.name,
            "running": pid is not None,
            "ready": pid is not None and self.ready(),
            "pid": pid,
            "url": self.url(),
            "log": str(self.logfile),
        }


class Kafka(Component):
    name = "kafka"

    @property
    def port(self) -> int:
        return self.layout.kafka_port

    @property
    def controller_port(self) -> int:
        return self.layout.kafka_port + 1

    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def install(self) -> None:
        libs = self.layout.kafka_libs
        marker = libs / ".complete"
        if marker.exists():
            return
        require(
            "java", "install a JDK (17 or newer), e.g. `apt-get install openjdk-17-jre-headless`"
        )
        mvn = require("mvn", "install Apache Maven, e.g. `apt-get install maven`")
        log(f"resolving Apache Kafka {KAFKA_VERSION} jars from Maven Central into {libs}")
        tmp = libs.with_name("libs.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(HERE / "kafka" / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={tmp}",
                "-DincludeScope=runtime",
            ],
            check=True,
        )
        shutil.rmtree(libs, ignore_errors=True)
        tmp.rename(libs)
        marker.write_text(KAFKA_VERSION)

    def _java(self) -> list[str]:
        java = require("java", "install a JDK (17 or newer)")
        heap = os.environ.get("DELEGO_LOCAL_KAFKA_HEAP", "-Xms256m -Xmx768m").split()
        # A local broker lives minutes to hours on a 2-core machine: in its first minutes
        # at load, C2's compilations took more CPU than all request threads together
        # (measured: 12.4 s vs 8.3 s); with C1 only, the request threads used the same
        # CPU (8.7 s) and the broker half as much in all. DELEGO_LOCAL_KAFKA_JIT="" = C2.
        jit = os.environ.get("DELEGO_LOCAL_KAFKA_JIT", "-XX:TieredStopAtLevel=1").split()
        return [
            java,
            *heap,
            *jit,
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={HERE / 'kafka' / 'log4j2.properties'}",
            "-cp",
            f"{self.layout.kafka_libs}/*",
        ]

    def sasl_users(self) -> dict[str, str]:
        """The SCRAM users (name -> password) of a SASL broker; empty: a PLAINTEXT broker."""
        path = self.layout.kafka_sasl_users
        if path is None:
            return {}
        try:
            users = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InfraError(f"cannot read the Kafka SASL users file {path}: {exc}") from exc
        if not isinstance(users, dict) or not users.get("admin"):
            raise InfraError(f"{path}: a JSON object of user -> password with an 'admin' entry")
        for name, password in users.items():
            # kafka-storage's --add-scram syntax: `[name=..,password=..]`, no quoting
            if not all(
                isinstance(v, str) and v and not set(v) & set(',[]="') for v in (name, password)
            ):
                raise InfraError(
                    f"{path}: user {name!r}: names and passwords must be non-empty"
                    ' strings without , [ ] = or "'
                )
        return users

    def _listener_config(self, users: dict[str, str]) -> list[str]:
        controller = f"CONTROLLER://127.0.0.1:{self.controller_port}"
        if not users:
            return [
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},{controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ]
        # As in compose: clients authenticate with SCRAM-SHA-512 and the StandardAuthorizer
        # applies the ACLs (`delego kafka acls apply`). `admin` is the super user the
        # broker itself and the operators' tools use. The controller listener stays
        # PLAINTEXT on the loopback (SCRAM cannot authenticate a KRaft controller: its
        # credentials live in the metadata log it serves); its principal is ANONYMOUS,
        # which must be a super user to register the broker with the controller.
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required"
            f' username="admin" password="{users["admin"]}";'
        )
        return [
            f"listeners=SASL_PLAINTEXT://127.0.0.1:{self.port},{controller}",
            f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={jaas}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:admin;User:ANONYMOUS",
            "allow.everyone.if.no.acl.found=false",
        ]

    def prepare(self) -> None:
        data = self.dir / "data"
        props = self.dir / "server.properties"
        users = self.sasl_users()
        props.touch(mode=0o600)  # it may hold the admin password
        props.chmod(0o600)
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    *self._listener_config(users),
                    "controller.listener.names=CONTROLLER",
                    f"log.dirs={data}",
                    "num.partitions=3",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "delete.topic.enable=true",
                    "",
                ]
            )
        )
        if (data / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        log(f"formatting KRaft storage in {data} (cluster id {cluster_id})")
        result = subprocess.run(
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",
                "-c",
                str(props),
                # the SCRAM users are created with the storage, before anyone connects
                *(
                    arg
                    for name, password in users.items()
                    for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")
                ),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise InfraError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")

    def command(self) -> list[str]:
        return [*self._java(), "kafka.Kafka", str(self.dir / "server.properties")]

    def ready(self) -> bool:
        if not port_open(self.port):
            return False
        try:
            with open(self.logfile, "rb") as f:
                f.seek(max(0, f.seek(0, 2) - 256_000))
                text = f.read().decode(errors="replace")
        except OSError:
            return False
        # the last start's marker must be after the last "starting" line
        started = text.rfind("Kafka Server started")
        starting = text.rfind("starting (kafka.server.KafkaRaftServer)")
        return started != -1 and started > starting


class FerretDB(Component):
    name = "ferretdb"

    @property
    def port(self) -> int:
        return self.layout.mongo_port

    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def install(self) -> None:
        binary = self.layout.ferretdb_bin
        if binary.exists():
            return
        go = require(
            "go",
            "install Go 1.26 or newer (https://go.dev/doc/install or `apt-get install golang`)",
        )
        log(f"building FerretDB {FERRETDB_BUILD} from the Go module proxy into {binary}")
        env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
        work = binary.parent
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        # 1. the upstream module, downloaded through the Go module proxy
        info = json.loads(
            subprocess.run(
                [go, "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
                cwd=HERE / "ferretdb",
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        src = work / "src"
        shutil.copytree(info["Dir"], src)
        for p in src.rglob("*"):
            p.chmod(p.stat().st_mode | 0o200)
        # 2. our patch (see FERRETDB_FILES)
        for name, dest in FERRETDB_FILES.items():
            shutil.copy(HERE / "ferretdb" / name, src / dest)
        for file, old, new, times in FERRETDB_EDITS:
            path = src / file
            text = path.read_text()
            if text.count(old) != times:
                raise InfraError(
                    f"cannot patch FerretDB: expected {times} x {old!r} in {file},"
                    f" found {text.count(old)}"
                )
            path.write_text(text.replace(old, new))
        # 3. our tiny main, built against the patched module
        build = work / "build"
        build.mkdir()
        for name in ("main.go", "go.mod", "go.sum"):
            shutil.copy(HERE / "ferretdb" / name, build / name)
        subprocess.run(
            [go, "mod", "edit", f"-replace={FERRETDB_MODULE}=../src"],
            cwd=build,
            env=env,
            check=True,
        )
        tmp = work / "ferretdb.partial"
        subprocess.run(
            [go, "build", "-trimpath", "-o", str(tmp), "."], cwd=build, env=env, check=True
        )
        tmp.rename(binary)
        shutil.rmtree(src)
        shutil.rmtree(build)

    def command(self) -> list[str]:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        return [
            str(self.layout.ferretdb_bin),
            f"-listen-addr=127.0.0.1:{self.port}",
            # WAL (FerretDB's default) with synchronous=NORMAL: a commit survives a
            # crash of any process, and the last ones may be lost only if the
            # machine loses power — like mongod's journal, flushed every 100 ms.
            # FULL (SQLite's default) fsyncs every commit and halves write throughput.
            f"-sqlite-url=file:{data}/?_pragma=synchronous(NORMAL)",
            "-log-level=warn",
            # Go's profiler, for whoever tunes the store: DELEGO_FERRETDB_DEBUG_ADDR=127.0.0.1:6060
            f"-debug-addr={os.environ.get('DELEGO_FERRETDB_DEBUG_ADDR', '')}",
        ]

    def ready(self) -> bool:
        return port_open(self.port) and _mongo_ping(self.port)


def _mongo_ping(port: int) -> bool:
    """Send an OP_MSG {ping: 1} and check for ok: 1.0 (no driver needed)."""

    # BSON {"ping": 1, "$db": "admin"}
    def cstring(s: str) -> bytes:
        return s.encode() + b"\x00"

    elems = b"\x10" + cstring("ping") + (1).to_bytes(4, "little")
    elems += b"\x02" + cstring("$db") + (6).to_bytes(4, "little") + b"admin\x00"
    doc = (len(elems) + 5).to_bytes(4, "little") + elems + b"\x00"
    body = (0).to_bytes(4, "little") + b"\x00" + doc
    header = (16 + len(body)).to_bytes(4, "little") + (1).to_bytes(4, "little")
    header += (0).to_bytes(4, "little") + (2013).to_bytes(4, "little")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(header + body)
            reply = s.recv(4096)
    except OSError:
        return False
    return b"ok\x00" in reply and b"\x00\x00\x00\x00\x00\x00\xf0\x3f" in reply


COMPONENTS: dict[str, type[Component]] = {"kafka": Kafka, "ferretdb": FerretDB}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("component", choices=[*COMPONENTS, "all"])
    parser.add_argument("action", choices=["install", "start", "stop", "status"])
    parser.add_argument("--state-dir", help="data/log/pid directory (default $DELEGO_STATE_DIR)")
    parser.add_argument("--kafka-port", type=int)
    parser.add_argument("--mongo-port", type=int)
    parser.add_argument(
        "--kafka-sasl-users",
        help="JSON file of SCRAM users (default $DELEGO_LOCAL_KAFKA_SASL_USERS)",
    )
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    layout = Layout.from_env(
        args.state_dir, args.kafka_port, args.mongo_port, args.kafka_sasl_users
    )
    names = list(COMPONENTS) if args.component == "all" else [args.component]
    comps = [COMPONENTS[n](layout) for n in names]
    try:
        if args.action == "status":
            statuses = [c.status() for c in comps]
            print(json.dumps(statuses, indent=2))
            return 0 if all(s["ready"] for s in statuses) else 3
        for c in comps:
            if args.action == "install":
                c.install()
            elif args.action == "start":
                c.start(args.timeout)
            else:
                c.stop()
    except InfraError as exc:
        print(f"[localinfra] error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(
            f"[localinfra] error: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
