"""``switchboard``: run the platform, administer tenants, place simulated calls.

Every command takes ``--json`` for scripts and exits non-zero with a clear message on bad
input. The platform's URL and token come from ``--url``/``--token`` or
``SWITCHBOARD_URL``/``SWITCHBOARD_TOKEN``.
"""

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict

from switchboard.settings import (
    DEV_ADMIN_TOKEN,
    DEV_EXOTEL_API_KEY,
    DEV_EXOTEL_API_TOKEN,
    DEV_TWILIO_AUTH_TOKEN,
)


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    url: str = "http://127.0.0.1:8080"
    token: str = DEV_ADMIN_TOKEN
    twilio_auth_token: str = DEV_TWILIO_AUTH_TOKEN
    exotel_api_key: str = DEV_EXOTEL_API_KEY
    exotel_api_token: str = DEV_EXOTEL_API_TOKEN


class CliError(Exception):
    pass


def _api(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    try:
        r = httpx.request(
            method,
            args.url.rstrip("/") + path,
            headers={"Authorization": f"Bearer {args.token}"},
            timeout=30,
            **kwargs,
        )
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach the platform at {args.url}: {e}") from e
    if r.status_code >= 400:
        try:
            body = r.json()
            detail = body.get("detail", body)
        except ValueError:
            detail = r.text
        raise CliError(f"{method} {path} failed ({r.status_code}): {detail}")
    return r.json() if r.content else None


def _emit(args: argparse.Namespace, data: Any, human: str) -> None:
    print(json.dumps(data) if args.json else human)


def configure_logging(level: str, sink: Any = sys.stderr) -> None:
    """Dotted event names with the ids bound to them (tenant_id, call_id). INFO by default:
    Pipecat's DEBUG lines carry transcripts and spoken text, which are callers' data.
    Tracebacks are plain: loguru's ``diagnose`` prints every frame's variables, and the
    frames of a provider call hold its API key."""
    from loguru import logger

    logger.remove()
    logger.add(
        sink,
        level=level.upper(),
        format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {message} {extra}",
        diagnose=False,
        backtrace=False,
    )


def cmd_up(args: argparse.Namespace) -> None:
    from switchboard.serve import serve
    from switchboard.server import SERVER_LIMITS, create_app
    from switchboard.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level)
    serve(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        drain_secs=settings.drain_secs,
        **SERVER_LIMITS,
    )


def cmd_fleet(args: argparse.Namespace) -> None:
    """The fleet on this machine until Ctrl-C: Redis must be running (SWITCHBOARD_REDIS_URL,
    default the local one) and nginx installed."""
    import signal

    from switchboard.fleet import Fleet
    from switchboard.settings import get_settings

    settings = get_settings()
    redis_url = settings.redis_url or "redis://127.0.0.1:6379/0"
    data = settings.data_dir.resolve() / "fleet"
    print(f"starting the control plane and {args.media_processes} media processes ...")
    fleet = Fleet(data, media_processes=args.media_processes, redis_url=redis_url, port=args.port)
    print(f"the fleet is up at {fleet.url} (nginx), Redis {redis_url}; logs in {data}")
    for n, process in enumerate(fleet.media, 1):
        print(f"  media-{n}: {process.url}  (pid {process.proc.pid})")
    print("Ctrl-C stops it (media processes drain their calls first)")

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("stopping: media processes finish their calls ...")
    finally:
        fleet.stop(timeout=settings.drain_secs + 10)


def cmd_tenant_create(args: argparse.Namespace) -> None:
    agent: dict[str, Any] = {"name": args.agent_name or args.name, "greeting": args.greeting}
    if args.persona:
        agent["persona"] = args.persona
    if args.transfer_number:
        agent["transfer_number"] = args.transfer_number
    if args.tools:
        agent["tools"] = args.tools.split(",")
    out = _api(args, "POST", "/v1/tenants", json={"name": args.name, "agent": agent})
    _emit(args, out, f"tenant {out['id']}  agent {out['agent']['id']}")


def cmd_tenant_list(args: argparse.Namespace) -> None:
    out = _api(args, "GET", "/v1/tenants", params={"limit": 200})
    _emit(args, out, "\n".join(f"{t['id']}  {t['name']}" for t in out["items"]) or "(none)")


def cmd_number_bind(args: argparse.Namespace) -> None:
    out = _api(
        args,
        "POST",
        f"/v1/tenants/{args.tenant}/numbers",
        json={"e164": args.number, "agent_id": args.agent, "provider": args.provider},
    )
    _emit(args, out, f"{out['e164']} ({out['provider']}) -> agent {out['agent_id']}")


def cmd_knowledge_add(args: argparse.Namespace) -> None:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    with path.open("rb") as f:
        out = _api(
            args, "POST", f"/v1/tenants/{args.tenant}/documents", files={"file": (path.name, f)}
        )
    if out["status"] in ("queued", "processing"):
        out = _follow_document(args, out)
    if out["status"] == "failed":
        raise CliError(f"{out['filename']} could not be ingested: {out['error']}")
    _emit(args, out, f"{out['id']}  {out['filename']}  {out['status']}  {out['chunks']} chunks")


DOCUMENT_STAGES = ("queued", "processing", "ready")


def _follow_document(args: argparse.Namespace, doc: dict) -> dict:
    """Poll a queued document until it settles, with a bar through its states."""
    from tqdm import tqdm

    path = f"/v1/tenants/{args.tenant}/documents/{doc['id']}"
    deadline = time.monotonic() + args.wait
    with tqdm(
        total=len(DOCUMENT_STAGES),
        desc=doc["filename"],
        bar_format="{desc}: {bar} {postfix}",
        file=sys.stderr,
        disable=args.json,
    ) as bar:
        while True:
            stage = doc["status"]
            if stage in DOCUMENT_STAGES:
                bar.update(DOCUMENT_STAGES.index(stage) + 1 - bar.n)
            bar.set_postfix_str(stage)
            if stage in ("ready", "failed"):
                return doc
            if time.monotonic() > deadline:
                raise CliError(f"{doc['filename']} is still {stage} after {args.wait:.0f} s")
            time.sleep(0.25)
            doc = _api(args, "GET", path)


def _print_turn(turn: Any) -> None:
    if turn.index == 0:
        print(f"  greeting  agent: {turn.agent_heard!r}")
    else:
        tools = ", ".join(turn.tools) or "-"
        latency = f"{turn.latency_ms:.0f} ms" if turn.latency_ms is not None else "no reply"
        print(f"  turn {turn.index}    caller: {turn.caller!r}")
        if turn.platform_heard is not None:
            print(f"            (platform heard: {turn.platform_heard!r})")
        if turn.clear_after_ms is not None:
            print(
                f"            (caller cut in: platform sent 'clear' "
                f"{turn.clear_after_ms:.0f} ms after the caller started speaking)"
            )
        print(f"            agent:  {turn.agent_heard!r}")
        print(f"            tools:  {tools}    latency: {latency}")
    if turn.interrupted_by_caller:
        print("            [agent stopped mid-sentence: the caller interrupted]")


def cmd_call(args: argparse.Namespace) -> None:
    from switchboard.caller import Utterance, place_call
    from switchboard.line_conditions import LineConditions

    utterances = [Utterance(text=t) for t in args.say or []]
    utterances += [Utterance(audio=Path(a)) for a in args.audio or []]
    for keys in args.keys or []:
        if not re.fullmatch(r"[0-9*#]+", keys):
            raise CliError(f"--keys {keys}: only 0-9, * and #")
        utterances.append(Utterance(keys=keys))
    for a in args.audio or []:
        if not Path(a).is_file():
            raise CliError(f"no such file: {a}")
    for n in args.barge_in or []:
        if not 1 <= n <= len(utterances):
            raise CliError(f"--barge-in {n}: there are {len(utterances)} utterances")
        utterances[n - 1].barge_in = True
    report = asyncio.run(
        place_call(
            args.url,
            args.to,
            utterances,
            hang_up=not args.no_hang_up,
            token=args.token,
            tenant_id=args.tenant,
            provider=args.provider,
            twilio_auth_token=args.twilio_auth_token,
            exotel_api_key=args.exotel_api_key,
            exotel_api_token=args.exotel_api_token,
            conditions=LineConditions(
                gain_db=args.gain,
                noise_snr_db=args.noise,
                loss_pct=args.loss,
                jitter_ms=args.jitter,
                seed=args.seed,
            ),
        )
    )
    if args.json:
        for turn in report.turns:
            print(json.dumps(turn.__dict__))
        return
    if report.outcome == "no_stream":
        print(f"the platform answered without a stream: {report.spoken!r}")
        return
    print(f"call {report.call_id}")
    for turn in report.turns:
        _print_turn(turn)
    print(f"  hung up by the {report.hung_up_by}")
    if report.transferred_to:
        print(f"  transferred to {report.transferred_to}")


def cmd_demo(args: argparse.Namespace) -> None:
    from switchboard.demo.run import run_demo

    run_demo(port=args.port)


def build_parser() -> argparse.ArgumentParser:
    client = ClientSettings()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=client.url, help="platform URL (SWITCHBOARD_URL)")
    common.add_argument("--token", default=client.token, help="API token (SWITCHBOARD_TOKEN)")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    p = argparse.ArgumentParser(prog="switchboard", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the platform (both planes, embedded defaults)")
    up.add_argument("--host")
    up.add_argument("--port", type=int)
    up.set_defaults(func=cmd_up)

    fleet = sub.add_parser(
        "fleet", help="the platform as a fleet: a control plane, N media processes, nginx, Redis"
    )
    fleet.add_argument("--media-processes", type=int, default=2)
    fleet.add_argument("--port", type=int, default=8080, help="where nginx listens")
    fleet.set_defaults(func=cmd_fleet)

    demo = sub.add_parser("demo", help="start the platform, set up a tenant, place a call")
    demo.add_argument("--port", type=int)
    demo.set_defaults(func=cmd_demo)

    call = sub.add_parser("call", parents=[common], help="place a simulated phone call")
    call.add_argument("--to", required=True, help="the number to call, E.164")
    call.add_argument("--say", action="append", help="a caller utterance (repeatable)")
    call.add_argument("--audio", action="append", help="a WAV file to speak (repeatable)")
    call.add_argument(
        "--keys", action="append", help="keys to press on the keypad, e.g. 1234# (repeatable)"
    )
    call.add_argument(
        "--barge-in",
        type=int,
        action="append",
        metavar="N",
        help="utterance N interrupts the agent's previous reply mid-sentence",
    )
    call.add_argument("--no-hang-up", action="store_true", help="wait for the agent to hang up")
    call.add_argument("--tenant", help="tenant id, to show which tools each turn used")
    call.add_argument(
        "--twilio-auth-token",
        default=client.twilio_auth_token,
        help="the auth token the call's webhooks are signed with, as Twilio signs them "
        "(SWITCHBOARD_TWILIO_AUTH_TOKEN)",
    )
    call.add_argument(
        "--provider",
        choices=["twilio", "exotel"],
        default="twilio",
        help="which provider's protocol the call speaks (the number must be bound to it)",
    )
    call.add_argument(
        "--exotel-api-key",
        default=client.exotel_api_key,
        help="the API key Exotel presents (SWITCHBOARD_EXOTEL_API_KEY)",
    )
    call.add_argument(
        "--exotel-api-token",
        default=client.exotel_api_token,
        help="the API token Exotel presents (SWITCHBOARD_EXOTEL_API_TOKEN)",
    )
    bad = call.add_argument_group("a bad line (deterministic for a seed)")
    bad.add_argument("--gain", type=float, default=0.0, metavar="DB", help="caller's level")
    bad.add_argument("--noise", type=float, metavar="SNR_DB", help="noise under the speech")
    bad.add_argument("--loss", type=float, default=0.0, metavar="PCT", help="packets lost")
    bad.add_argument("--jitter", type=float, default=0.0, metavar="MS", help="packets late")
    bad.add_argument("--seed", type=int, default=0)
    call.set_defaults(func=cmd_call)

    tenants = sub.add_parser("tenant", help="tenants and their agents").add_subparsers(
        dest="action", required=True
    )
    tc = tenants.add_parser("create", parents=[common], help="create a tenant with an agent")
    tc.add_argument("--name", required=True)
    tc.add_argument("--greeting", required=True)
    tc.add_argument("--persona")
    tc.add_argument("--agent-name")
    tc.add_argument("--transfer-number")
    tc.add_argument("--tools", help="comma-separated tool names")
    tc.set_defaults(func=cmd_tenant_create)
    tl = tenants.add_parser("list", parents=[common])
    tl.set_defaults(func=cmd_tenant_list)

    numbers = sub.add_parser("number", help="phone numbers").add_subparsers(
        dest="action", required=True
    )
    nb = numbers.add_parser("bind", parents=[common], help="bind a number to an agent")
    nb.add_argument("--tenant", required=True)
    nb.add_argument("--agent", required=True)
    nb.add_argument("--number", required=True, help="E.164, e.g. +15550100200")
    nb.add_argument(
        "--provider", choices=["twilio", "exotel"], default="twilio", help="who delivers its calls"
    )
    nb.set_defaults(func=cmd_number_bind)

    knowledge = sub.add_parser("knowledge", help="knowledge documents").add_subparsers(
        dest="action", required=True
    )
    ka = knowledge.add_parser(
        "add",
        parents=[common],
        help="upload a document (PDF, DOCX, HTML, CSV, Markdown, text) and wait until it is "
        "ready; non-zero exit with the reason if it fails",
    )
    ka.add_argument("file")
    ka.add_argument("--tenant", required=True)
    ka.add_argument("--wait", type=float, default=600, help="seconds to wait for ingestion")
    ka.set_defaults(func=cmd_knowledge_add)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as e:
        print(f"switchboard: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
