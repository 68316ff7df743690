"""The in-memory index and ranking logic (no database), and store URLs."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from storehelp import unit_vectors

from faceledger.errors import InputError
from faceledger.store import AnnOptions, data_dir, open_store, redact_url, sqlite_path
from faceledger.store._common import rank_subjects
from faceledger.store.memindex import GalleryIndex
from faceledger.store.scan import BLOCK, SCALE, SPLIT_MIN, Int8Scanner, exact_top, quantize, wide_residual


def test_rank_subjects_widens_the_template_search_until_k_subjects() -> None:
    # 30 templates of subject 1 score above everything else; then subjects 2..5
    scores = np.concatenate([np.linspace(0.99, 0.9, 30), [0.8, 0.7, 0.6, 0.5]])
    tids = np.arange(34)
    sids = np.array([1] * 30 + [2, 3, 4, 5])
    asked: list[int] = []

    def scores_of(m: int) -> tuple[np.ndarray, np.ndarray]:
        asked.append(m)
        return tids[:m], scores[:m]

    out = rank_subjects(scores_of, lambda t: sids[t], k=3, total=34)
    assert [(s, t) for s, _, t in out] == [(1, 0), (2, 30), (3, 31)]
    assert asked == [16, 34]
    assert rank_subjects(scores_of, lambda t: sids[t], k=9, total=34)[-1][0] == 5  # exhausted: 5 subjects
    gone = rank_subjects(scores_of, lambda t: np.where(sids[t] == 1, -1, sids[t]), k=2, total=34)
    assert [s for s, _, _ in gone] == [2, 3]  # templates of a removed subject are skipped


def brute_force(vecs: dict[int, np.ndarray], owner: dict[int, int], q: np.ndarray, k: int) -> list[int]:
    best: dict[int, float] = {}
    for tid, v in vecs.items():
        best[owner[tid]] = max(best.get(owner[tid], -2.0), float(v @ q))
    return sorted(best, key=lambda s: -best[s])[:k]


def test_exact_index_matches_brute_force_through_adds_and_removals() -> None:
    rng = np.random.default_rng(0)
    v = unit_vectors(600, 1)
    index = GalleryIndex(128, AnnOptions(mode="off"))
    vecs: dict[int, np.ndarray] = {}
    owner: dict[int, int] = {}
    for step in range(6):
        new = np.arange(step * 100, step * 100 + 100)
        subjects = rng.integers(0, 150, size=100)
        index.add(new, subjects, v[new])
        vecs.update(zip(new.tolist(), v[new], strict=True))
        owner.update(zip(new.tolist(), subjects.tolist(), strict=True))
        drop = rng.choice(sorted(vecs), size=40, replace=False)
        index.remove(drop)
        for t in drop.tolist():
            del vecs[t]
        index.remove(np.array([10_000]))  # unknown ids are ignored
        assert len(index) == len(vecs) and index.template_ids == set(vecs)
    probes = unit_vectors(20, 2)
    for q, hits in zip(probes, index.search(probes, k=5), strict=True):
        assert [s for s, _, _ in hits] == brute_force(vecs, owner, q, 5)


def near_ties(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows where int8 rounding reorders the best: many near-copies of the probe, some clipped."""
    rng = np.random.default_rng(seed + 2)
    probe = unit_vectors(1, seed)[0]
    v = unit_vectors(n, seed + 1)
    v[:300] = probe + rng.normal(0, 0.004, (300, probe.size)).astype(np.float32)  # scores within ~0.001
    v[300:320, 0] = 0.9  # a component beyond the int8 range: clipped, its error counted in the residual
    return v / np.linalg.norm(v, axis=1, keepdims=True), probe


@pytest.mark.parametrize("n", [5_000, 70_000])
def test_int8_scan_returns_the_exact_float32_top_m(n: int) -> None:
    v, probe = near_ties(n, 3)
    truth = v @ probe
    codes, residual = quantize(v)
    approx, q_residual = Int8Scanner().scores(codes, probe)
    wide = residual > wide_residual(128)
    assert wide.sum() == 20  # the clipped rows
    bound = residual[~wide].max() + q_residual * (1 + residual.max())
    wide_rows = (np.flatnonzero(wide), residual[wide] + q_residual * (1 + residual.max()))
    rescored: list[int] = []

    def rescore(rows: np.ndarray) -> np.ndarray:
        rescored.append(len(rows))
        return v[rows] @ probe

    def finer(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # q . x8, within |q| |x - x8|
        return codes[rows].astype(np.float32) @ probe / SCALE, residual[rows]

    counts = {}
    for m in (1, 5, 64):
        for own in (None, finer):  # with closer scores of the candidates, fewer rows are re-scored: same answer
            rescored.clear()
            rows, scores = exact_top(approx, m, bound, rescore, wide_rows, own)
            assert rows.tolist() == np.argsort(-truth, kind="stable")[:m].tolist()
            assert np.allclose(scores, truth[rows], atol=1e-6)
            assert max(rescored) <= 600  # about the near-ties only were read in float32 (each pass)
            counts[m, own is None] = sum(rescored)
        assert counts[m, False] <= counts[m, True]
    assert np.argsort(-approx.approx, kind="stable")[:5].tolist() != np.argsort(-truth, kind="stable")[:5].tolist()


def test_int8_scan_without_the_simd_kernel_gives_the_same_scores() -> None:
    v, probe = near_ties(3_000, 5)
    codes, _ = quantize(v)
    fast = Int8Scanner()
    slow = Int8Scanner()
    slow._dot = None  # the numpy fallback used where numkong is not installed
    assert np.array_equal(fast.scores(codes, probe)[0].approx.copy(), slow.scores(codes, probe)[0].approx)


@pytest.mark.parametrize("threads", [2, 3])
def test_a_scan_split_over_threads_gives_the_same_scores_and_block_maxima(threads: int) -> None:
    n = SPLIT_MIN + 8_001  # large enough to be split; the last block is partial
    codes = np.random.default_rng(4).integers(-127, 128, (n, 128), dtype=np.int8)
    probe = unit_vectors(1, 4)[0]
    one = Int8Scanner(1).scores(codes, probe)[0]
    alone = one.approx.copy()
    split = Int8Scanner(threads).scores(codes, probe)[0]
    assert np.array_equal(split.approx, alone)
    assert np.array_equal(split.maxima, [alone[i:i + BLOCK].max() for i in range(0, n, BLOCK)])
    for c in (1, 32, 600):
        rows = split.top(c)
        assert len(rows) >= c and set(np.argsort(-alone, kind="stable")[:c].tolist()) <= set(rows.tolist())
    for x in (np.quantile(alone, 0.9999), np.quantile(alone, 0.5), alone[-1], alone.max() + 1):
        assert np.array_equal(split.at_least(x), np.flatnonzero(alone >= x))


def _scan_in_child(codes: np.ndarray, probe: np.ndarray) -> list[float]:
    return Int8Scanner(2).scores(codes, probe)[0].approx[:5].tolist()


def test_a_split_scan_in_a_forked_child_runs_without_the_parents_threads() -> None:
    codes = np.random.default_rng(5).integers(-127, 128, (SPLIT_MIN + 1, 128), dtype=np.int8)
    probe = unit_vectors(1, 5)[0]
    first = Int8Scanner(2).scores(codes, probe)[0].approx[:5].tolist()  # starts the helper pool here
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_scan_in_child, (codes, probe)).get(timeout=120) == first


def test_index_reads_float32_rows_only_for_the_re_score() -> None:
    v, probe = near_ties(20_000, 7)
    fetched: list[int] = []

    def exact(tids: np.ndarray) -> np.ndarray:
        fetched.extend(tids.tolist())
        return v[tids]

    lean = GalleryIndex(128, AnnOptions(), exact=exact, float32_up_to=10_000)
    full = GalleryIndex(128, AnnOptions())
    small = GalleryIndex(128, AnnOptions(), exact=exact)  # up to 100,000 templates: a float32 copy too
    for index in (lean, full, small):
        index.add(np.arange(20_000), np.arange(20_000) // 2, v)  # two templates per subject
    assert lean.nbytes < full.nbytes / 3 and small.nbytes == full.nbytes
    assert small.search(probe[None, :], k=10) == full.search(probe[None, :], k=10) and not fetched
    got, ref = lean.search(probe[None, :], k=10)[0], full.search(probe[None, :], k=10)[0]
    assert got == ref
    best: dict[int, float] = {}
    for t, s in enumerate((v @ probe).tolist()):
        best[t // 2] = max(best.get(t // 2, -2.0), s)
    assert [s for s, _, _ in got] == sorted(best, key=lambda s: -best[s])[:10]
    assert 0 < len(fetched) < 2_000


def _graph_index(n: int) -> tuple[GalleryIndex, np.ndarray]:
    v = unit_vectors(n, 5)
    index = GalleryIndex(128, AnnOptions(mode="on", background=False, m=8, ef_construction=64, ef_search=200))
    index.add(np.arange(n), np.arange(n), v)
    assert index.ann_ready
    return index, v


def _graph_vector(index: GalleryIndex, t: int) -> np.ndarray:
    """What hnswlib's memory holds for a deleted id (a look inside the library, for the test only)."""
    graph = index.ann._index  # type: ignore[union-attr]
    graph.unmark_deleted(t)
    try:
        return np.asarray(graph.get_items([t]))[0]
    finally:
        graph.mark_deleted(t)


def test_a_removed_template_is_overwritten_in_the_hnsw_graph_not_only_marked_deleted() -> None:
    index, v = _graph_index(300)
    graph = index.ann
    index.remove(np.array([7, 150, 299]))
    assert index.ann is graph and len(graph) == 297  # erased in place: the same graph
    for t in (7, 150, 299):
        assert not _graph_vector(index, t).any()  # zeros where the face's vector was
    assert np.allclose(np.asarray(graph._index.get_items([8]))[0], v[8], atol=1e-6)  # the others kept
    hits = index.search(v, k=1)
    assert {h[0][0] for h in hits}.isdisjoint({7, 150, 299})
    live = [i for i in range(300) if i not in (7, 150, 299)]
    assert [hits[i][0][0] for i in live] == live


def test_removing_more_than_can_be_erased_in_place_builds_the_graph_again_without_them() -> None:
    from faceledger.store.ann import ERASE_IN_PLACE_MAX

    index, v = _graph_index(300)
    old = index.ann
    gone = np.arange(0, 300, 7)[: ERASE_IN_PLACE_MAX + 5]
    index.remove(gone)
    assert index.ann is not old and index.ann_ready  # the old graph dropped, a new one built from the codes
    graph = index.ann._index  # type: ignore[union-attr]
    assert graph.get_current_count() == 300 - len(gone)  # the removed never entered it, not even deleted
    assert set(graph.get_ids_list()) == set(range(300)) - set(gone.tolist())
    hits = index.search(v, k=1)
    assert {h[0][0] for h in hits}.isdisjoint(set(gone.tolist()))


def test_changes_during_a_background_build_are_replayed_on_the_graph() -> None:
    v = unit_vectors(500, 3)
    index = GalleryIndex(128, AnnOptions(mode="off", m=8, ef_construction=64, ef_search=200))
    index.add(np.arange(400), np.arange(400), v[:400])
    index.options = AnnOptions(mode="on", background=False, m=8, ef_construction=64, ef_search=200)
    # what _maybe_build does, with changes arriving between the snapshot and the install
    index._building = []
    snapshot = (index._tids[:400].copy(), index._vecs[:400].copy())
    index.remove(np.arange(0, 100))
    index.add(np.arange(400, 500), np.arange(400, 500), v[400:])
    index._build(*snapshot)
    assert index.ann_ready and len(index.ann) == len(index) == 400
    # 100 removed during the build: too many to overwrite in place, so that graph was built again
    graph = index.ann._index  # type: ignore[union-attr]
    assert graph.get_current_count() == 400 and set(graph.get_ids_list()) == set(range(100, 500))
    hits = index.search(v, k=1)
    assert all(h[0][0] >= 100 for h in hits)  # removed templates are never returned
    assert [h[0][0] for h in hits[100:]] == list(range(100, 500))


def test_many_removals_during_a_background_build_make_it_build_again() -> None:
    v = unit_vectors(400, 4)
    index = GalleryIndex(128, AnnOptions(mode="off", m=8, ef_construction=64, ef_search=200))
    index.add(np.arange(400), np.arange(400), v)
    index.options = AnnOptions(mode="on", background=False, m=8, ef_construction=64, ef_search=200)
    index._building = []
    snapshot = (index._tids[:400].copy(), index._vecs[:400].copy())
    index.remove(np.arange(0, 100))  # more than can be overwritten in the graph the build is making
    index._build(*snapshot)
    graph = index.ann._index  # type: ignore[union-attr]
    assert graph.get_current_count() == 300  # built again from the 300 left, none kept as deleted
    assert set(graph.get_ids_list()) == set(range(100, 400))


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELEDGER_DATA_DIR", str(tmp_path / "data"))
    assert data_dir() == tmp_path / "data"
    assert sqlite_path("sqlite://") == (tmp_path / "data" / "faceledger.db", {})
    assert sqlite_path("sqlite:///srv/fl.db") == (Path("/srv/fl.db"), {})
    assert sqlite_path("sqlite:////srv/fl.db")[0] == Path("/srv/fl.db")
    assert sqlite_path("sqlite:rel/fl.db?key_file=/k") == (Path("rel/fl.db"), {"key_file": "/k"})
    with pytest.raises(InputError):
        sqlite_path("sqlite://host/fl.db")
    with pytest.raises(InputError):
        open_store(f"sqlite://{tmp_path / 'a.db'}?colour=blue")
    with pytest.raises(InputError):
        open_store("mysql://localhost/x")
    store = open_store(f"sqlite://{tmp_path / 'a.db'}?key_file={tmp_path / 'keys' / 'kek'}")
    store.close()
    assert (tmp_path / "keys" / "kek").exists()


def test_passwords_are_redacted() -> None:
    assert redact_url("postgresql://fl:s3cret@db:5432/x?sslmode=require") == "postgresql://fl:***@db:5432/x?sslmode=require"
    assert redact_url("sqlite:///a.db") == "sqlite:///a.db"


def test_row_map_agrees_with_a_dict_through_adds_moves_and_removals() -> None:
    from faceledger.store.rowmap import RowMap

    rng = np.random.default_rng(11)
    m, ref = RowMap(), {}
    next_id = 0
    for _ in range(300):
        op = rng.integers(0, 4)
        if op == 0 or not ref:  # a run of new ids (increasing, as the database issues them)
            ids = np.arange(next_id, next_id + int(rng.integers(1, 50)))
            next_id = int(ids[-1]) + 1
        elif op == 1:  # ids out of order (another process's, or a reused rowid)
            ids = rng.permutation(np.setdiff1d(np.arange(next_id + 20), list(ref)))[:int(rng.integers(1, 30))]
            next_id = max(next_id, int(ids.max()) + 1) if len(ids) else next_id
        if op <= 1:
            rows = rng.integers(0, 10**6, len(ids))
            m.add(ids, rows)
            ref.update(zip(ids.tolist(), rows.tolist(), strict=True))
        elif op == 2:
            for t in rng.choice(list(ref), size=min(len(ref), 5), replace=False).tolist():
                assert m.pop(t) == ref.pop(t)
        else:
            for t in rng.choice(list(ref), size=min(len(ref), 5), replace=False).tolist():
                ref[t] = int(rng.integers(0, 10**6))
                m.set(t, ref[t])
        probe = np.arange(next_id + 5)
        assert m.rows(probe).tolist() == [ref.get(t, -1) for t in probe.tolist()]
        assert len(m) == len(ref) and sorted(m.ids().tolist()) == sorted(ref)
