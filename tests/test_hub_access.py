"""Why a Hub download failed, one message per cause: each cause produced by huggingface_hub itself, from a
Hub simulated at the HTTP layer (its client's transport answers as the Hub does, or fails to connect), so
the exceptions are the ones snapshot_download raises for real."""

from __future__ import annotations

from types import SimpleNamespace

import huggingface_hub
import huggingface_hub.constants
import pytest
from huggingface_hub.utils import _http

from xlprompt.data.hub import HUB_BACKBONES
from xlprompt.data.hub_access import hub_unreachable
from xlprompt.stages import download_backbone

XLMR = "FacebookAI/xlm-roberta-base"
# The HTTP library huggingface_hub's client is built on (httpx2 in huggingface_hub 2, httpx in 1): its
# transport is replaced, and its errors raised, as a real connection would raise them.
httpx2 = getattr(_http, "httpx2", None) or _http.httpx


@pytest.fixture
def simulated_hub(tmp_path, monkeypatch):
    """Install ``answer(request) -> httpx2.Response`` (or raise) as the Hub, downloads on, an empty cache."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "HF_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)

    # huggingface_hub retries a failed connection with backoff (about 20 s in all): no waiting here.
    monkeypatch.setattr(_http, "time", SimpleNamespace(sleep=lambda seconds: None))

    def install(answer):
        huggingface_hub.set_client_factory(
            lambda: httpx2.Client(
                transport=httpx2.MockTransport(answer), event_hooks={"request": [_http.hf_request_event_hook]}
            )
        )

    yield install
    huggingface_hub.set_client_factory(_http.default_client_factory)


def error(status: int, code: str | None = None):
    headers = {"X-Error-Code": code} if code else {}
    return lambda request: httpx2.Response(status, headers=headers, request=request)


def fetch_message(tmp_path, *extra: str, repo: str = XLMR) -> str:
    with pytest.raises(SystemExit) as stop:
        download_backbone.main(["--hub", repo, *extra, "--out", str(tmp_path / "model")])
    assert not (tmp_path / "model").exists()
    return str(stop.value)


def test_a_hub_that_cannot_be_reached_names_the_connection_error_and_the_proxy_variables(
    simulated_hub, tmp_path, monkeypatch
):
    def no_route(request):
        raise httpx2.ConnectError("[Errno -2] Name or service not known", request=request)

    simulated_hub(no_route)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    message = fetch_message(tmp_path)
    assert message.startswith(
        "xlprompt download_backbone: the Hugging Face Hub (https://huggingface.co) could not be reached from "
    )
    assert f"to fetch {XLMR}@{HUB_BACKBONES[XLMR][:12]}: ConnectError: [Errno -2] Name or service not known" in message
    assert "HTTPS_PROXY=http://proxy.example:3128, HTTP_PROXY=unset" in message
    assert "downloads are off" not in message
    assert "copy its cache folder here" in message


def test_a_proxy_that_refuses_is_the_unreachable_message_too(simulated_hub, tmp_path):
    def refused(request):
        raise httpx2.ProxyError("407 Proxy Authentication Required", request=request)

    simulated_hub(refused)
    assert "the proxy refused the connection (407 Proxy Authentication Required)" in fetch_message(tmp_path)


def test_a_gated_repository_names_its_licence_page_and_how_to_log_in(simulated_hub, tmp_path):
    simulated_hub(error(403, "GatedRepo"))
    message = fetch_message(tmp_path)
    assert f"{XLMR} is gated (HTTP 403): its licence must be accepted" in message
    assert f"Accept it at https://huggingface.co/{XLMR} (logged in to the Hub)" in message
    assert "`hf auth login`" in message
    assert "HF_TOKEN" in message
    assert "downloads are off" not in message


@pytest.mark.parametrize(
    "repo", ["meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.2-1B", "google/gemma-2-2b", "mistralai/Mistral-7B-v0.3"]
)
def test_a_gated_llm_without_a_token_stops_at_its_pinned_revision_naming_the_licence_page(
    simulated_hub, tmp_path, repo
):
    """The Hub answers a client without a token 401 with X-Error-Code GatedRepo for a gated model (Llama,
    Gemma and Mistral need their licence accepted): one message, the licence page, how to log in."""
    seen = []

    def gated(request):
        seen.append(str(request.url))
        return error(401, "GatedRepo")(request)

    simulated_hub(gated)
    message = fetch_message(tmp_path, repo=repo)
    assert HUB_BACKBONES[repo] in seen[0]  # the pinned revision was asked for
    assert f"{repo} is gated (HTTP 401): its licence must be accepted" in message
    assert f"Accept it at https://huggingface.co/{repo} (logged in to the Hub)" in message
    assert "`hf auth login`" in message
    assert "HF_TOKEN" in message
    assert message.count("\n") <= 1  # one message, no traceback


@pytest.mark.parametrize("status", [401, 404])
def test_a_missing_or_private_repository_says_to_check_the_id_and_to_log_in(simulated_hub, tmp_path, status):
    """The Hub answers 401 to a client without a token for a repository that is missing or private."""
    simulated_hub(error(status, "RepoNotFound"))
    message = fetch_message(tmp_path)
    assert (
        f"{XLMR} was not found on the Hub, or is private (HTTP {status}): check the id (https://huggingface.co/{XLMR})"
    ) in message
    assert "`hf auth login`" in message
    assert "HF_TOKEN" in message


def test_access_refused_without_a_reason_says_a_token_is_needed(simulated_hub, tmp_path):
    simulated_hub(error(403))
    message = fetch_message(tmp_path)
    assert f"the Hub refused access to {XLMR} (HTTP 403): it is private or needs a token" in message
    assert "`hf auth login`" in message


@pytest.mark.parametrize("given", [False, True])
def test_a_missing_revision_names_it_and_where_it_is_set(simulated_hub, tmp_path, given):
    simulated_hub(error(404, "RevisionNotFound"))
    revision = "0123456789abcdef0123456789abcdef01234567" if given else HUB_BACKBONES[XLMR]
    message = fetch_message(tmp_path, *(["--revision", revision] if given else []))
    assert f"{XLMR} has no revision '{revision}' (HTTP 404)" in message
    where = "backbone.revision in the config" if given else "pinned in src/xlprompt/data/hub.py (HUB_BACKBONES)"
    assert f"The revision is {where}" in message
    assert f"https://huggingface.co/{XLMR}/commits/main" in message


def test_downloads_off_and_not_cached_keeps_its_own_message(simulated_hub, tmp_path, monkeypatch):
    def no_request(request):
        raise AssertionError("a request was sent with downloads off")

    simulated_hub(no_request)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = fetch_message(tmp_path)
    assert f"{XLMR}@{HUB_BACKBONES[XLMR][:12]} is not in the Hugging Face cache" in message
    assert "downloads are off (HF_HUB_OFFLINE=1)" in message
    assert "could not be reached" not in message


def test_the_reachability_check_reports_a_failed_connection_and_passes_an_answer(simulated_hub):
    def no_route(request):
        raise httpx2.ConnectError("connection refused", request=request)

    simulated_hub(no_route)
    assert "could not be reached" in hub_unreachable()
    assert "ConnectError: connection refused" in hub_unreachable()
    simulated_hub(lambda request: httpx2.Response(200, request=request))
    assert hub_unreachable() is None
    simulated_hub(error(503))
    assert "HTTP 503" in hub_unreachable()
