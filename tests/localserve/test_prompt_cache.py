"""A request goes to the free llama.cpp slot holding the longest prefix of its prompt, as Ollama's runner does."""

import threading

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from autorag_dagster.localserve.backends.llama_cpp import LlamaCppRunner, _shared_prefix  # noqa: E402


class Held:
    """What the runner reads of a llama.cpp context: the tokens it has evaluated."""

    def __init__(self, tokens: list[int]):
        self.input_ids = np.array([*tokens, 0, 0, 0], dtype=np.intc)  # the buffer is longer than what is held
        self.n_tokens = len(tokens)


def runner_with(*contexts: Held) -> LlamaCppRunner:
    runner = object.__new__(LlamaCppRunner)
    runner._lock = threading.Lock()
    runner._contexts = list(contexts)
    runner._free = list(contexts)
    return runner


def test_the_shared_prefix_counts_only_evaluated_tokens():
    assert _shared_prefix(Held([1, 2, 3, 4]), [1, 2, 3, 9]) == 3
    assert _shared_prefix(Held([1, 2]), [1, 2, 0, 0]) == 2  # the zeros past n_tokens are not held
    assert _shared_prefix(Held([]), [1, 2]) == 0 and _shared_prefix(Held([5]), []) == 0


def test_a_request_takes_the_free_slot_that_holds_its_prefix_and_gives_it_back():
    stage, other = Held([7, 7, 1, 2, 3]), Held([7, 7, 9])
    runner = runner_with(other, stage)
    with runner._slot([7, 7, 1, 2, 3, 4, 5]) as used:
        assert used is stage and runner._free == [other]
        with runner._slot([7, 7, 1, 2]) as second:  # the best slot is busy: the next best free one
            assert second is other and runner._free == []
    assert sorted(map(id, runner._free)) == sorted(map(id, [stage, other]))
