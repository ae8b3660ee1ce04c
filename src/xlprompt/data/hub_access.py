"""Fetching from the Hugging Face Hub into its local cache, and saying why it failed, one message per cause.

Four causes need four remedies, so each gets its own message:

- offline and not cached (HF_HUB_OFFLINE=1, or HF_DATASETS_OFFLINE=1 for data): how to fetch it;
- the Hub unreachable (no route, DNS, proxy, time-out): the error, the proxy variables the client
  reads, and how to fill the cache on another machine;
- 401/403, gated or private: the page where the licence is accepted, `hf auth login` or HF_TOKEN;
- 404, repository or revision not found: the revision asked for and where it was set.

The causes are told apart by huggingface_hub's own exceptions (``snapshot_download`` raises them,
wrapping connection errors in ``LocalEntryNotFoundError``), and the Hub's reachability can be
checked in about a second before any job runs (:func:`hub_unreachable`).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "HF_ENDPOINT")


class HubUnavailable(RuntimeError):
    """The data set or model is neither in the local Hugging Face cache nor downloadable now."""


def cache_dir() -> str:
    """The Hugging Face Hub cache this process uses (HF_HUB_CACHE, else HF_HOME/hub)."""
    from huggingface_hub.constants import HF_HUB_CACHE

    return str(HF_HUB_CACHE)


def _endpoint() -> str:
    from huggingface_hub.constants import ENDPOINT

    return ENDPOINT


def repo_page(repo_id: str, repo_type: str) -> str:
    """The repository's page on the Hub (where a gated model's licence is accepted)."""
    return f"{_endpoint()}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"


def fetch_command(repo_id: str, revision: str, patterns: list[str], repo_type: str) -> str:
    include = " ".join(f"--include '{p}'" for p in patterns[:6]) + (" ..." if len(patterns) > 6 else "")
    kind = f" --repo-type {repo_type}" if repo_type != "model" else ""
    return f"hf download {repo_id}{kind} --revision {revision} {include}"


def download_instructions(repo_id: str, revision: str, patterns: list[str], repo_type: str) -> str:
    """Offline and not cached: the switches that are set, and how to fetch the files."""
    switches = ["HF_HUB_OFFLINE"] + (["HF_DATASETS_OFFLINE"] if repo_type == "dataset" else [])
    state = ", ".join(f"{name}={os.environ.get(name, 'unset')}" for name in switches)
    return (
        f"{repo_id}@{revision[:12]} is not in the Hugging Face cache ({cache_dir()}) and downloads are off "
        f"({state}). On a machine with network, either rerun the workflow with HF_HUB_OFFLINE=0 (make run "
        f"CONFIG=... HF_HUB_OFFLINE=0; by hand: {'=0 '.join(switches)}=0), or fetch it first with "
        f"`{fetch_command(repo_id, revision, patterns, repo_type)}` and copy the cache folder here."
    )


def unreachable_message(reason: str, what: str = "") -> str:
    """The Hub could not be reached: ``reason`` (the connection error) and what to do about it."""
    proxies = ", ".join(
        f"{name}={os.environ.get(name) or os.environ.get(name.lower()) or 'unset'}" for name in PROXY_VARIABLES
    )
    fetching = f" to fetch {what}" if what else ""
    return (
        f"the Hugging Face Hub ({_endpoint()}) could not be reached from {socket.gethostname()}{fetching}: "
        f"{reason}. Check the network and the proxy variables the Hub client reads ({proxies}). Or fill the "
        f"cache on a machine that reaches the Hub (`hf download ...`, or this workflow there with HF_HUB_OFFLINE=0), "
        f"copy its cache folder here ({cache_dir()}; HF_HOME moves it), and run with HF_HUB_OFFLINE=1."
    )


def _causes(err: BaseException) -> list[BaseException]:
    """``err``'s chain of causes (``raise ... from``), the first cause first."""
    chain = []
    while err.__cause__ is not None:
        err = err.__cause__
        chain.append(err)
    return chain


def explain(
    err: Exception, repo_id: str, revision: str, patterns: list[str], repo_type: str, revision_from: str
) -> str | None:
    """The message for ``err``, raised by ``snapshot_download(repo_id, revision=revision)``, naming its cause
    and remedy; None when it is none of the four causes (then it is a bug to report as it is).
    ``revision_from`` says where the revision was set (for the 404 message)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    what = f"{repo_id}@{revision[:12]}"
    if isinstance(err, (LocalEntryNotFoundError, IncompleteSnapshotError)):
        # Not in the cache; why the Hub was not asked, or did not answer, is the chained cause: the offline
        # switch (none, or OfflineModeIsEnabled), the Hub's answer (an HfHubHTTPError), or the connection's error.
        causes = _causes(err)
        if not causes or isinstance(causes[0], OfflineModeIsEnabled):
            return download_instructions(repo_id, revision, patterns, repo_type)
        answers = [cause for cause in causes if isinstance(cause, HfHubHTTPError)]
        if not answers:
            return unreachable_message(f"{type(causes[-1]).__name__}: {causes[-1]}", what)
        err = answers[0]
    page = repo_page(repo_id, repo_type)
    login = "log in here with `hf auth login`, or set HF_TOKEN to a token with read access"
    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, GatedRepoError):
        return (
            f"{repo_id} is gated (HTTP {status}): its licence must be accepted before it can be downloaded. "
            f"Accept it at {page} (logged in to the Hub), then {login}."
        )
    if isinstance(err, RevisionNotFoundError):
        return (
            f"{repo_id} has no revision {revision!r} (HTTP {status}). The revision is {revision_from}; choose a "
            f"commit from {page}/commits/main."
        )
    if isinstance(err, RepositoryNotFoundError):
        return (
            f"{repo_id} was not found on the Hub, or is private (HTTP {status}): check the id ({page}); for a "
            f"private repository, {login}."
        )
    if isinstance(err, HfHubHTTPError) and status in (401, 403):
        return f"the Hub refused access to {repo_id} (HTTP {status}): it is private or needs a token; {login}."
    if isinstance(err, HfHubHTTPError) and status is not None and status >= 500:
        return unreachable_message(f"HTTP {status} from the Hub", what)
    if type(err).__name__ == "ProxyError":  # the HTTP client's (httpx), which snapshot_download lets through
        return unreachable_message(f"the proxy refused the connection ({err})", what)
    return None


def snapshot(
    repo_id: str,
    revision: str,
    patterns: list[str],
    repo_type: str,
    local_files_only: bool = False,
    revision_from: str = "the one asked for",
) -> Path:
    """The local snapshot of ``patterns`` of a Hub repository at ``revision`` (downloaded if allowed:
    not with HF_HUB_OFFLINE=1, nor with ``local_files_only``); :class:`HubUnavailable` with the cause's
    message where it cannot be had."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id, repo_type=repo_type, revision=revision, allow_patterns=patterns, local_files_only=local_files_only
        )
    except Exception as err:
        message = explain(err, repo_id, revision, patterns, repo_type, revision_from)
        if message is None:
            raise
        raise HubUnavailable(message) from None
    return Path(folder)


def hub_unreachable(timeout: float = 5.0) -> str | None:
    """Why the Hub cannot be reached from here (one HEAD request to its endpoint, through huggingface_hub's own
    HTTP client and proxy settings), or None when it answers. For a process with downloads on: with
    HF_HUB_OFFLINE=1, huggingface_hub refuses the request itself, and that is reported as the reason."""
    from huggingface_hub.utils import get_session

    try:
        response = get_session().head(_endpoint(), timeout=timeout)
    except Exception as err:  # any failure to get an answer (DNS, connection, proxy, TLS, time-out) is the reason
        return unreachable_message(f"{type(err).__name__}: {err}")
    if response.status_code >= 500:
        return unreachable_message(f"HTTP {response.status_code} from {_endpoint()}")
    return None
