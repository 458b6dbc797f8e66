"""`make run`: the platform on this machine, the seed's story, then wait for Ctrl-C.

With no `DELEGO_KAFKA_BOOTSTRAP` / `DELEGO_MONGODB_URL`, the local Kafka and
FerretDB are started (cached after the first run) on fresh data, so every run
tells the same story; `DELEGO_KEEP_DATA=1` keeps the previous run's data.
The platform's clock starts at the story's moment (Tuesday 1 December 2026,
18:30 in Paris) and runs at real speed; `DELEGO_CLOCK_START=now` uses real time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time

from delego_shared.settings import Settings

from .demo.data import STORY_START
from .demo.seed import DemoError
from .demo.sinks import SmtpSink, WebhookReceiver
from .demo.story import Bus, Urls, play, render
from .platform import Platform, PlatformConfig, PlatformError


def say(msg: str) -> None:
    print(f"[delego] {msg}", flush=True)


def story_clock() -> dict[str, str]:
    start = os.environ.get("DELEGO_CLOCK_START", STORY_START)
    if start == "now":
        os.environ.pop("DELEGO_CLOCK_START", None)
        return {}
    clock = {"DELEGO_CLOCK_START": start, "DELEGO_CLOCK_ANCHOR": f"{time.time():.3f}"}
    os.environ.update(clock)  # this process reads the same clock as the services
    return clock


async def main_async(cfg: PlatformConfig, *, story: bool, wait: bool) -> int:
    t0 = time.monotonic()
    if not os.environ.get("DELEGO_KEEP_DATA") and not (cfg.kafka_bootstrap or cfg.mongodb_url):
        _stop_local(cfg)
        shutil.rmtree(cfg.state_dir, ignore_errors=True)
    smtp = SmtpSink()
    smtp.start()
    settings = Settings()
    hooks = WebhookReceiver(secret="")
    cfg.extra_env.update({"DELEGO_SMTP_HOST": "127.0.0.1", "DELEGO_SMTP_PORT": str(smtp.port)})
    cfg.extra_env.update(story_clock())
    platform = Platform(cfg, say)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        platform.start_infra()
        await platform.create_topics()
        platform.start_services()
        say("starting catalog, matching, billing, notifications (logs in .delego/run/logs/)")
        await platform.wait_ready()
        say(f"platform ready in {time.monotonic() - t0:.1f}s (SMTP sink 127.0.0.1:{smtp.port})")
        if story:
            from .demo.data import WEBHOOK_SECRET

            hooks.secret = WEBHOOK_SECRET
            await hooks.start()
            urls = Urls(*(cfg.url(s) for s in ("catalog", "matching", "billing", "notifications")))
            say("playing the seed's story through the public HTTP APIs ...")
            report = await play(
                urls, settings, smtp, hooks, Bus(platform.kafka, cfg.topic_prefix), log=say
            )
            print(render(report), flush=True)
            say(f"story told in {time.monotonic() - t0:.1f}s since start")
        if wait:
            say("running; press Ctrl-C to stop everything")
            await stop.wait()
        return 0
    except (PlatformError, DemoError) as exc:
        say(f"error: {exc}")
        return 1
    finally:
        say("stopping ...")
        await hooks.stop()
        platform.stop()
        smtp.stop()
        say("stopped; no process left behind")


def _stop_local(cfg: PlatformConfig) -> None:
    from .platform import _infra

    try:
        _infra("stop", cfg, ["kafka", "ferretdb"])
    except PlatformError:
        pass


def main() -> None:
    cfg = PlatformConfig.from_env()
    story = os.environ.get("DELEGO_STORY", "1") != "0"
    sys.exit(asyncio.run(main_async(cfg, story=story, wait=True)))


if __name__ == "__main__":
    main()
