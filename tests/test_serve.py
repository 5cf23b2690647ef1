"""`xmodal serve` and its client: a real server on 127.0.0.1 serving the real BC-ResNet,
reprogrammed through HTTP as a black box."""

import io
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from adapters_modal import load_source
from cli import main
from tests.conftest import UCR
from xmodal.errors import XmodalError
from xmodal.estimators.series import V2SClassifier
from xmodal.http_source import HttpBlackBoxSource
from xmodal.persistence import load_reprogrammer
from xmodal.serve import NPY, BackgroundServer, ServeLimits, create_app, free_port

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def speech():
    return load_source("bc-resnet-gsc35")


@pytest.fixture(scope="module")
def server(speech):
    limits = ServeLimits(max_batch=64, max_body_bytes=8_000_000, rate=1000, burst=1000)
    running = BackgroundServer(create_app(speech, api_key=KEY, limits=limits))
    yield running
    running.stop()


def _post(url, body: bytes, content_type=NPY, key=KEY):
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["X-API-Key"] = key
    request = urllib.request.Request(url + "/predict", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except urllib.error.URLError:  # the server answered 413 on Content-Length and closed while we still sent
        return 413, {"detail": "reset while sending: larger than the limit"}


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def test_the_server_gives_probabilities_and_nothing_else(server, speech):
    waves = torch.randn(3, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    status, answer = _post(server.url, _npy(waves.numpy()))
    assert status == 200 and set(answer) == {"probabilities"}
    probabilities = np.array(answer["probabilities"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    with torch.no_grad():
        expected = speech.logits(waves).softmax(dim=1).double().numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    info = json.loads(urllib.request.urlopen(server.url + "/info", timeout=10).read())
    assert info["name"] == "bc-resnet-gsc35" and info["weights_sha256"] == speech.weights_sha256
    assert info["input_shape"] == [16000] and len(info["class_names"]) == 35


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("wrong", 401)])
def test_a_wrong_or_missing_key_is_refused(server, key, status):
    assert _post(server.url, _npy(np.zeros((1, 16000), np.float32)), key=key) == (
        status, {"detail": "missing or wrong API key (header X-API-Key)"})


@pytest.mark.parametrize(("body", "content_type", "status", "detail"), [
    (b"not an array", NPY, 422, "not a readable .npy"),
    (_npy(np.zeros((2, 100), np.float32)), NPY, 422, "shape (N, 16000)"),
    (_npy(np.full((1, 16000), np.nan, np.float32)), NPY, 422, "NaN"),
    (_npy(np.array([["a"] * 16000])), NPY, 422, "numbers"),
    (json.dumps({"inputs": [[0.0] * 16000]}).encode(), "application/json", 200, None),
    (json.dumps({"wrong": 1}).encode(), "application/json", 422, "JSON"),
    (b"{", "application/json", 422, "JSON"),
    (_npy(np.zeros((65, 16000), np.float32)), NPY, 413, "1 to 64 inputs"),
    (b"\0" * 9_000_000, NPY, 413, "larger than"),
], ids=["garbage", "shape", "nan", "strings", "json", "json-no-inputs", "json-broken", "batch", "oversized"])
def test_malformed_and_oversized_requests_get_clear_errors_and_the_server_survives(server, body, content_type,
                                                                                   status, detail):
    got, answer = _post(server.url, body, content_type)
    assert got == status
    if detail is not None:
        assert detail in answer["detail"]
    assert _post(server.url, _npy(np.zeros((1, 16000), np.float32)))[0] == 200  # still serving


def test_the_rate_limit_answers_429_and_the_client_waits_and_retries(speech):
    slow = BackgroundServer(create_app(speech, limits=ServeLimits(rate=1.0, burst=1)))
    try:
        body = _npy(np.zeros((1, 16000), np.float32))
        assert _post(slow.url, body, key=None)[0] == 200
        status, answer = _post(slow.url, body, key=None)
        assert status == 429 and "rate limit" in answer["detail"]
        client = HttpBlackBoxSource(slow.url, retries=3, backoff=0.1)
        client._ask(np.ones((1, 16000), np.float32))  # waits for Retry-After, then succeeds
        assert client.sent == 2  # the refused attempt counts too: what an API may bill
    finally:
        slow.stop()


def test_an_unreachable_server_is_one_clear_error():
    with pytest.raises(XmodalError, match="cannot reach .* after 2 attempts"):
        HttpBlackBoxSource(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0.01)


def _gunpoint(gunpoint, n=24):
    return gunpoint.x_train[:n, None, :], gunpoint.y_train[:n], gunpoint.x_test[:30, None, :]


def test_reprogramming_through_http_within_budget_reloads_with_the_served_model(server, speech, gunpoint,
                                                                                tmp_path, monkeypatch):
    monkeypatch.setenv("XMODAL_API_KEY", KEY)
    x, y, x_test = _gunpoint(gunpoint)
    model = V2SClassifier("v2s", source=server.url, query_budget=1500, epochs=2, batch_size=8,
                          random_state=0).fit(x, y)
    result = model.fit_result_
    assert 0 < result.queries <= 1500
    remote = model.predict_proba(x_test)
    folder = model.save_pretrained(tmp_path / "run")
    document = json.loads((folder / "reprogrammer.json").read_text())
    assert document["source"] == {"name": server.url, "weights_sha256": speech.weights_sha256}
    with pytest.raises(XmodalError, match="--trust-source"):
        V2SClassifier.from_pretrained(folder)  # a run that would contact a server: only when trusted
    again = V2SClassifier.from_pretrained(folder, trust_source=True)
    np.testing.assert_allclose(again.predict_proba(x_test), remote, atol=1e-6)
    local, _ = load_reprogrammer(folder, source=speech)  # the same model, white box, gives the same answers
    with torch.no_grad():
        np.testing.assert_allclose(local.predict_proba(torch.tensor(x_test[:, 0, :], dtype=torch.float32)).numpy(),
                                   remote, atol=1e-5)


def test_a_fit_run_again_with_its_journal_sends_nothing_and_ends_the_same(server, gunpoint, tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("XMODAL_API_KEY", KEY)
    monkeypatch.setenv("XMODAL_QUERY_JOURNAL", str(tmp_path / "queries.journal"))
    x, y, x_test = _gunpoint(gunpoint, 16)

    def fit(budget):
        model = V2SClassifier("v2s", source=server.url, query_budget=budget, epochs=3, batch_size=8,
                              random_state=3).fit(x, y)
        return model, model.reprogrammer_.source

    monkeypatch.delenv("XMODAL_QUERY_JOURNAL")
    reference, reference_source = fit(700)  # uninterrupted, no journal
    monkeypatch.setenv("XMODAL_QUERY_JOURNAL", str(tmp_path / "queries.journal"))
    interrupted, interrupted_source = fit(300)  # stops part-way, as an interrupted fit would
    assert interrupted.fit_result_.stopped_by == "budget" and interrupted_source.sent > 0
    resumed, resumed_source = fit(700)  # the same command again: the journal answers the first part
    # nothing asked twice goes over the network again, and the model is the uninterrupted one
    assert resumed_source.from_journal > 0
    # the same questions, fewer sent (the reference too answers repeats from its in-memory journal)
    assert resumed_source.sent + resumed_source.from_journal == reference_source.sent + reference_source.from_journal
    assert resumed_source.sent < reference_source.sent
    assert resumed.fit_result_.queries == reference.fit_result_.queries <= 700  # the budget counts every question
    np.testing.assert_array_equal(resumed.predict_proba(x_test), reference.predict_proba(x_test))


def test_a_journal_of_another_server_is_refused(server, speech, tmp_path):
    journal = tmp_path / "queries.journal"
    client = HttpBlackBoxSource(server.url, api_key=KEY, journal=journal)
    client._ask(np.zeros((1, 16000), np.float32))
    other = BackgroundServer(create_app(speech))
    try:
        with pytest.raises(XmodalError, match="holds answers of http://127.0.0.1"):
            HttpBlackBoxSource(other.url, journal=journal)
    finally:
        other.stop()


def test_the_cli_reprograms_through_the_server_and_logs_the_cost(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("XMODAL_API_KEY", raising=False)  # the CLI sets it from --api-key-file: restored after
    key = tmp_path / "key.txt"
    key.write_text(KEY + "\n")
    out = tmp_path / "run"
    assert main(["fit", "series", "--dataset", "Coffee", "--data-dir", str(UCR), "--preset", "v2s",
                 "--blackbox-url", server.url,
                 "--api-key-file", str(key), "--query-budget", "600", "--epochs", "1", "--quiet",
                 "--price-per-1000", "2.5", "--out", str(out)]) == 0
    log = json.loads((out / "metrics.json").read_text())["query_log"]
    assert 0 < log["training_queries"] <= 600 and log["queries_sent"] >= log["training_queries"]
    assert log["cost_usd"] == pytest.approx(log["queries_sent"] * 2.5 / 1000)
    assert main(["fit", "series", "--dataset", "Coffee", "--data-dir", str(UCR), "--blackbox-url", server.url]) == 1
    assert "--blackbox-url needs --query-budget" in capsys.readouterr().err


def test_xmodal_serve_runs_from_the_command_line(tmp_path):
    import subprocess
    import sys

    key = tmp_path / "key.txt"
    key.write_text(KEY)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "xmodal.cli", "serve", "bc-resnet-gsc35", "--port", str(port),
                                "--api-key-file", str(key)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client, deadline = None, time.monotonic() + 60
        while client is None:
            try:
                client = HttpBlackBoxSource(f"http://127.0.0.1:{port}", api_key=KEY, retries=0)
            except XmodalError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert client.served_name == "bc-resnet-gsc35"
        assert client._ask(np.zeros((2, 16000), np.float32)).shape == (2, 35)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert f"serving bc-resnet-gsc35 on http://127.0.0.1:{port}" in output and "API key required" in output


def test_the_client_splits_batches_to_the_servers_body_limit(speech):
    """An image is 600 kB as float32: a batch must fit the body limit as well as the batch limit."""
    limits = ServeLimits(max_batch=64, max_body_bytes=200_000)  # three 64 kB waveforms per request
    with BackgroundServer(create_app(speech, limits=limits)) as small:
        client = HttpBlackBoxSource(small.url)
        assert client.max_batch == 3
        batch = np.random.default_rng(0).uniform(-0.1, 0.1, (10, 16000)).astype(np.float32)
        assert client.predict(batch).shape == (10, 35) and client.sent == 10
