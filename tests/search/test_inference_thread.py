"""Query-time model work (loading, encoding, index search) runs on the process's one inference thread."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework.test import APIClient

from search.embeddings import Encoder, inference, on_inference_thread
from tests.search.test_search_fixtures import toy_corpus, toy_model_use


def _thread_name() -> str:
    return threading.current_thread().name


def test_runs_on_one_named_thread_and_returns_the_result() -> None:
    names = {on_inference_thread(_thread_name) for _ in range(5)}
    assert len(names) == 1
    assert next(iter(names)).startswith(inference.THREAD_NAME)
    assert on_inference_thread(divmod, 17, 5) == (3, 2)


def test_the_same_thread_serves_every_caller_thread() -> None:
    with ThreadPoolExecutor(4) as callers:
        names = set(callers.map(lambda _: on_inference_thread(_thread_name), range(12)))
    assert len(names) == 1


def test_exceptions_reach_the_caller() -> None:
    def fail() -> None:
        raise ValueError("no such model")

    with pytest.raises(ValueError, match="no such model"):
        on_inference_thread(fail)


def test_a_nested_call_runs_inline_instead_of_deadlocking() -> None:
    def outer() -> tuple[str, str]:
        return _thread_name(), on_inference_thread(_thread_name)

    first, nested = on_inference_thread(outer)
    assert first == nested


@pytest.mark.django_db
def test_a_rest_search_encodes_on_the_inference_thread_and_searches_faiss_single_threaded(
    settings, monkeypatch
) -> None:
    # given a catalogue indexed with the toy model, and spies on the encoder and on faiss's team size
    key = toy_model_use(settings)
    toy_corpus()
    seen: dict[str, list] = {"encode": [], "faiss_threads": []}
    from search.index import faiss_runtime, kinds

    real_encode, real_team = Encoder.encode_texts_detailed, kinds.faiss_team

    def encode_spy(self, texts):
        seen["encode"].append(_thread_name())
        return real_encode(self, texts)

    @contextlib.contextmanager
    def team_spy(queries: int):
        with real_team(queries):
            seen["faiss_threads"].append(faiss_runtime.faiss_module().omp_get_max_threads())
            yield

    monkeypatch.setattr(Encoder, "encode_texts_detailed", encode_spy)
    monkeypatch.setattr(kinds, "faiss_team", team_spy)
    from search.index import index_build, reader_refresh

    index_build(model_key=key, force=True)
    reader_refresh(model_key=key, block=True)
    seen["faiss_threads"].clear()
    # when a web request searches with a new text
    response = APIClient().get("/api/v1/search", {"q": "a green star on a white background"})
    # then it succeeds; the encoder ran on the inference thread, faiss searched the one vector with one thread
    assert response.status_code == 200, response.content
    assert response.json()["results"]
    assert seen["encode"]
    assert all(name.startswith(inference.THREAD_NAME) for name in seen["encode"])
    assert seen["faiss_threads"] == [1]


def test_batch_faiss_calls_keep_a_team_single_queries_do_not_and_the_size_is_restored(settings) -> None:
    from search.index.faiss_runtime import BATCH_BLAS_THRESHOLD, faiss_module, faiss_team

    settings.SEMSEARCH_INDEX_THREADS = 2
    faiss = faiss_module()

    def team_sizes() -> tuple[int, int, int]:
        faiss.omp_set_num_threads(3)  # e.g. torch's setting, when the same thread also encodes
        with faiss_team(1):
            single = faiss.omp_get_max_threads()
        with faiss_team(BATCH_BLAS_THRESHOLD):
            batch = faiss.omp_get_max_threads()
        after = faiss.omp_get_max_threads()
        return single, batch, after

    with ThreadPoolExecutor(1) as other:
        assert other.submit(team_sizes).result() == (1, 2, 3)
