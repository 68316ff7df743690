"""The two-plane exact scan (store/planes.py): its bound must never drop a row of the exact top m."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from storehelp import new_template, settings, unit_vectors

from faceledger.errors import StoreError
from faceledger.store import BulkSubject
from faceledger.store.memindex import BASIS_MIN, AnnOptions, GalleryIndex
from faceledger.store.planes import CHUNK, PlaneScanner, pca_basis, plane1
from faceledger.store.sqlite import SqliteStore


def exact_order(index: GalleryIndex, vecs: np.ndarray, q: np.ndarray, m: int) -> tuple[list[int], np.ndarray]:
    """Template ids of the exact top ``m`` (ties by index row, as the index breaks them) and the index's answer."""
    n = len(index)
    tids = index._tids[:n]
    exact = vecs[tids] @ q
    want = tids[np.lexsort((np.arange(n), -exact))[:m]]
    got, scores = index._scores_of(q, n, None)(m)
    assert np.allclose(scores, vecs[got] @ q, atol=1e-6)
    return want.tolist(), got


def plane2_gallery(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose variance is all in the first 96 axes, 10 rows wholly in the other 32, and a probe they answer.

    The principal axes put those 32 axes in plane 2, so the best rows have no plane 1
    part at all; a crowd of rows along the probe's plane 1 part scores just below them.
    """
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, 128)).astype(np.float32)
    v[:, 96:] *= 0.05
    d = np.zeros(128, np.float32)
    d[0] = 1.0
    e = np.zeros(128, np.float32)
    e[100], e[110] = 0.8, 0.6
    probe = 0.6 * d + 0.8 * e
    v[:1000] = d + rng.normal(0, 0.05, (1000, 128)).astype(np.float32)  # score about 0.6
    v[1000:1010] = e + rng.normal(0, 0.01, (10, 128)).astype(np.float32) * (np.arange(128) >= 96)  # about 0.8
    return v / np.linalg.norm(v, axis=1, keepdims=True), probe


def test_rows_with_all_their_energy_in_plane_2_are_found() -> None:
    v, probe = plane2_gallery(6_000, 1)
    index = GalleryIndex(128, AnnOptions())
    index.add(np.arange(len(v)), np.arange(len(v)), v)
    d1 = index._scanner.d1
    assert index._basis is not None and d1 == plane1(128) == 96
    rotated = v @ index._basis
    assert np.linalg.norm(rotated[1000:1010, :d1], axis=1).max() < 0.1  # the best rows: (almost) nothing in plane 1
    for m in (1, 20, 60):
        want, got = exact_order(index, v, probe, m)
        assert got.tolist() == want
        assert set(range(1000, 1010)) & set(want[:m])
    hits = index.search(probe[None, :], k=5)[0]
    assert {s for s, _, _ in hits} <= set(range(1000, 1010))


def test_ties_are_broken_by_row_and_k_beyond_the_gallery_returns_every_row() -> None:
    v = unit_vectors(3_000, 2)
    v[100:400] = v[7]  # 301 exact copies of one template (301 tied scores, more than any m below)
    index = GalleryIndex(128, AnnOptions())
    index.add(np.arange(len(v)), np.arange(len(v)), v)
    for m in (1, 20, 256, 400):
        want, got = exact_order(index, v, v[7], m)
        assert got.tolist() == want
    assert want[:2] == [7, 100]
    small = GalleryIndex(128, AnnOptions())
    small.add(np.arange(50), np.arange(50), v[:50])
    want, got = exact_order(small, v, v[3], 80)  # more than the index holds
    assert got.tolist() == want and len(want) == 50
    assert [s for s, _, _ in small.search(v[3][None, :], k=60)[0]] == want


def test_removed_rows_are_never_returned_and_moved_rows_are_scanned_where_they_now_are() -> None:
    n = CHUNK + 5_000  # two packed chunks of plane 1
    v = unit_vectors(n, 3)
    index = GalleryIndex(128, AnnOptions())
    index.add(np.arange(n), np.arange(n), v)
    index.search(v[:1], k=1)  # packs plane 1
    last = n - 1
    # the last row moves into row 5 when template 5 is removed: a stale pack would score row 5 as template 5
    index.remove(np.array([5, 12, 70_000]))
    assert 5 not in index.template_ids and len(index) == n - 3
    want, got = exact_order(index, v, v[last], 5)
    assert got.tolist() == want and want[0] == last
    hits = index.search(v[[5, 12, 70_000]], k=3)
    assert all(t not in (5, 12, 70_000) for h in hits for _, _, t in h)
    for q in unit_vectors(5, 4):
        want, got = exact_order(index, v, q, 20)
        assert got.tolist() == want


def test_rows_with_no_quantisation_error_and_no_plane_2_part() -> None:
    v = unit_vectors(1_000, 5)  # below BASIS_MIN: no rotation, plane 1 is the first 96 axes
    exact_rows = np.zeros((30, 128), np.float32)
    exact_rows[:, :4] = 0.5  # 0.5 * SCALE = 127: codes equal to the template, residual 0, |x_2| = 0
    v[200:230] = exact_rows
    index = GalleryIndex(128, AnnOptions())
    index.add(np.arange(len(v)), np.arange(len(v)), v)
    assert index._basis is None and len(index) < BASIS_MIN
    assert index._resid[200:230].max() < 1e-6 and index._bound[200:230].max() < 1e-6
    for m in (1, 16, 30, 40):
        want, got = exact_order(index, v, exact_rows[0], m)
        assert got.tolist() == want
    assert want[:30] == list(range(200, 230))


def test_the_basis_is_chosen_once_the_gallery_is_large_enough_and_rows_are_encoded_again() -> None:
    v = unit_vectors(BASIS_MIN + 500, 6)
    v[:, :8] += 0.6  # a dominant direction, so the principal axes differ from the identity
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    fetched: list[int] = []

    def exact(tids: np.ndarray) -> np.ndarray:
        fetched.extend(tids.tolist())
        return v[tids]

    index = GalleryIndex(128, AnnOptions(), exact=exact, float32_up_to=0)
    index.add(np.arange(1_000), np.arange(1_000), v[:1_000])
    assert index._basis is None
    index.add(np.arange(1_000, len(v)), np.arange(1_000, len(v)), v[1_000:])
    assert index._basis is not None and sorted(fetched) == list(range(1_000))  # held rows read once to re-encode
    assert np.allclose(index._basis.T @ index._basis, np.eye(128), atol=1e-5)
    for q in v[:3] + 0.01:
        fetched.clear()
        want, got = exact_order(index, v, q / np.linalg.norm(q), 20)
        assert got.tolist() == want


def test_a_basis_change_that_cannot_read_the_held_rows_waits_for_the_next_add() -> None:
    v = unit_vectors(BASIS_MIN + 600, 11)
    gone = {"now": True}

    def exact(tids: np.ndarray) -> np.ndarray:
        if gone["now"] and len(tids) == 1_000:  # the held rows, read to encode them again
            raise StoreError("templates of the in-memory index are missing from the database")
        return v[tids]

    index = GalleryIndex(128, AnnOptions(), exact=exact, float32_up_to=0)
    index.add(np.arange(1_000), np.arange(1_000), v[:1_000])
    index.add(np.arange(1_000, BASIS_MIN + 100), np.arange(1_000, BASIS_MIN + 100), v[1_000:BASIS_MIN + 100])
    assert index._basis is None and len(index) == BASIS_MIN + 100  # added all the same, in the old basis
    want, got = exact_order(index, v, v[5], 20)
    assert got.tolist() == want
    gone["now"] = False
    index.add(np.arange(BASIS_MIN + 100, len(v)), np.arange(BASIS_MIN + 100, len(v)), v[BASIS_MIN + 100:])
    assert index._basis is not None
    for q in (v[5], v[BASIS_MIN + 300]):
        want, got = exact_order(index, v, q, 20)
        assert got.tolist() == want


def test_pca_basis_is_orthogonal_and_orders_axes_by_variance() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2_000, 16)) * np.linspace(0.1, 3.0, 16)
    r = pca_basis(x.astype(np.float32))
    assert np.allclose(r.T @ r, np.eye(16), atol=1e-5)
    var = ((x @ r) ** 2).mean(axis=0)
    assert np.all(np.diff(var) <= 1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_plane_1_scan_without_the_simd_kernel_or_split_gives_the_same_bounds(threads: int) -> None:
    n = 2 * CHUNK + 777  # split over threads, last chunk partial
    codes = np.random.default_rng(8).integers(-127, 128, (n, 128), dtype=np.int8)
    rest = np.random.default_rng(9).random(n).astype(np.float32)
    q8 = np.random.default_rng(10).integers(-127, 128, 128, dtype=np.int8)
    fast, slow = PlaneScanner(96, threads), PlaneScanner(96, 1)
    slow._kernel = None
    a = fast.upper(codes, q8, [(rest, 3.5)])
    a_vals, a_max = a.approx.copy(), a.maxima.copy()
    b = slow.upper(codes, q8, [(rest, 3.5)])
    want = codes[:, :96].astype(np.int64) @ q8[:96].astype(np.int64) + rest * np.float32(3.5)
    assert np.allclose(a_vals, want, rtol=1e-6, atol=0) and np.array_equal(a_vals, b.approx)
    assert np.array_equal(a_max, b.maxima)
    assert np.array_equal(a.best, b.best) and np.array_equal(a_vals[a.best], a_max)  # each block's best row
    assert np.array_equal(a.best // 256, np.arange(len(a_max)))
    rows = np.array([0, 5, CHUNK, n - 1])
    full = codes[rows].astype(np.int64) @ q8.astype(np.int64)
    plane2 = codes[:, 96:]
    assert np.array_equal(fast.full(plane2, rows, q8), full) and np.array_equal(slow.full(plane2, rows, q8), full)


def test_the_hnsw_graph_is_built_from_codes_turned_back_from_the_rotated_basis() -> None:
    v = unit_vectors(BASIS_MIN + 1_000, 12)
    index = GalleryIndex(128, AnnOptions(), exact=lambda tids: v[tids], float32_up_to=0)
    index.add(np.arange(len(v)), np.arange(len(v)), v)
    assert index._basis is not None and index._vecs is None  # the graph can only come from the codes
    index.set_options(AnnOptions(mode="on", background=False, m=16, ef_construction=100, ef_search=200))
    assert index.ann_ready
    probes = v[:200]
    hits = index.search(probes, k=1)
    assert sum(h[0][0] == i for i, h in enumerate(hits)) >= 198  # each template finds itself through the graph


def test_plane_1_is_three_quarters_of_the_columns_in_multiples_of_32() -> None:
    assert [plane1(d) for d in (1, 2, 16, 40, 64, 128, 256, 512)] == [1, 1, 12, 30, 32, 96, 192, 384]
    v = unit_vectors(BASIS_MIN + 10, 13, dim=256)
    index = GalleryIndex(256, AnnOptions())
    index.add(np.arange(len(v)), np.arange(len(v)), v)
    assert index._codes.shape[1] == 192 and index._codes2.shape[1] == 64
    want, got = exact_order(index, v, v[9], 20)
    assert got.tolist() == want and want[0] == 9


def test_a_sqlite_gallery_crossing_the_basis_threshold_searches_exactly_and_forgets_removed_subjects(
        tmp_path: Path) -> None:
    v = unit_vectors(BASIS_MIN + 400, 14)
    v[:, :6] += 0.5  # templates share a direction, as real ones do
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    with SqliteStore(tmp_path / "fl.db") as store:
        first = 1_500
        with store.transaction() as tx:
            tx.create_gallery("staff", settings())
            ids = tx.bulk_enroll("staff", [BulkSubject(f"s{i}", [new_template(v[i], f"p{i}")]) for i in range(first)])
        assert store.search("staff", v[7], k=1)[0][0].subject_id == ids[7]  # the index is loaded, not rotated
        assert store.index("staff")._basis is None
        with store.transaction() as tx:  # followed at commit: the index crosses the threshold and is rotated
            ids += tx.bulk_enroll("staff", [BulkSubject(f"s{i}", [new_template(v[i], f"p{i}")])
                                            for i in range(first, len(v))])
        assert store.index("staff")._basis is not None
        with store.transaction() as tx:
            tx.remove_subject(ids[7])
            tx.remove_subject(ids[len(v) - 1])
        for q in (v[7], v[len(v) - 1], v[100], v[first + 50]):
            got = store.search("staff", q, k=5)[0]
            alive = [i for i in range(len(v)) if i not in (7, len(v) - 1)]
            scores = v[alive] @ q
            want = [ids[alive[j]] for j in np.argsort(-scores, kind="stable")[:5]]
            assert [c.subject_id for c in got] == want
            assert got[0].score == pytest.approx(float(scores.max()), abs=1e-6)


def test_a_block_that_changed_is_read_unpacked_until_it_stays_unchanged() -> None:
    from faceledger.store.planes import PACK_AFTER, SPLIT_MIN

    n = SPLIT_MIN + 1_000
    rng = np.random.default_rng(15)
    codes = rng.integers(-127, 128, (n, 96), dtype=np.int8)
    rest = rng.random(n).astype(np.float32)
    q8 = rng.integers(-127, 128, 128, dtype=np.int8)
    scanner = PlaneScanner(96, 2)

    def check() -> None:
        got = scanner.upper(codes, q8, [(rest, 2.0)]).approx
        want = codes.astype(np.int64) @ q8[:96].astype(np.int64) + rest * np.float32(2.0)
        assert np.allclose(got, want, rtol=1e-6, atol=0)

    check()
    assert all(p is not None for p in scanner._packed)  # a new index is packed at once
    codes[10] = -codes[10]  # a change in block 0, as an enrollment or a removal makes
    scanner.changed(10, 11)
    for _ in range(PACK_AFTER):
        check()
        assert scanner._packed[0] is None and scanner._packed[1] is not None
    check()
    assert scanner._packed[0] is not None


def test_prepare_packs_every_block_before_the_first_search_and_changes_no_answer() -> None:
    from faceledger.store.planes import SPLIT_MIN

    vecs = unit_vectors(SPLIT_MIN + 3_000, 21)
    probes = vecs[[5, CHUNK + 7, SPLIT_MIN + 2_000]] + np.float32(0.01)
    answers = []
    for prepare in (False, True):
        index = GalleryIndex(128, AnnOptions(), exact=lambda tids: vecs[tids], float32_up_to=0)
        index.add(np.arange(len(vecs)), np.arange(len(vecs)), vecs)
        if prepare:
            index.prepare()
            packed = index._scanner._packed
            assert len(packed) == 3 and all(p is not None for p in packed)
        answers.append(index.search(probes, 5))
    assert answers[0] == answers[1]
    assert [a[0][0] for a in answers[1]] == [5, CHUNK + 7, SPLIT_MIN + 2_000]


def fuzz_gallery(seed: int, n: int) -> np.ndarray:
    """Rows of uneven variance per axis (so the principal axes matter) with near-ties; odd seeds: some not unit.

    Rows that are not unit widen every probe's slack (the largest ``|x8|``), so the even
    seeds keep to unit rows, where the bound is at its tightest and a wrong term shows.
    """
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0.1, 3.0, 128)
    v = rng.standard_normal((n, 128)) * spread
    v[200:230] = rng.standard_normal((30, 128)) * (spread < np.sort(spread)[24])  # in the axes of least variance
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    if seed % 2:
        v[:40] *= rng.uniform(0.2, 3.0, (40, 1))  # not unit: larger and smaller rows
        v[40:60, :3] = 0.9  # a component beyond +-0.5: clipped codes
    v[100:160] = v[99] + rng.normal(0, 1e-4, (60, 128))  # 61 near-ties, within int8 rounding of each other
    return v.astype(np.float32)


@pytest.mark.parametrize("seed", range(8))
def test_fuzz_the_folded_row_bound_is_never_below_an_exact_score(seed: int) -> None:
    n = BASIS_MIN + 1_500 * (seed % 3)
    v = fuzz_gallery(seed, n)
    index = GalleryIndex(128, AnnOptions())
    index.add(np.arange(n), np.arange(n), v)
    assert index._basis is not None
    rng = np.random.default_rng(1_000 + seed)
    plane2 = np.linalg.norm((v[160:] @ index._basis)[:, index._scanner.d1:], axis=1)
    tight = 160 + np.argsort(-plane2)[:3]  # as probes, the rows where Cauchy-Schwarz on plane 2 is nearly tight
    assert plane2.max() > 0.9  # the rows in the axes of least variance: plane 2 holds them
    probes = np.vstack([rng.standard_normal((6, 128)), v[99] + rng.normal(0, 1e-3, 128), v[[5, 45, 130]], v[tight]])
    probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
    for q in probes:
        p = index._plane_probe(q, n, lambda rows, q=q: v[rows] @ q)
        exact = v.astype(np.float64) @ q.astype(np.float64)
        bound = p.upper.approx.astype(np.float64) / p.unit + p.slack
        assert np.all(exact <= bound), float((exact - bound).max())
        for m in (1, 20, 70):  # the near-ties can tie in float32 (then either order is right): compare scores
            got, scores = index._scores_of(q, n, None)(m)
            best = np.sort(exact)[::-1][:m]
            assert np.allclose(exact[got], best, atol=1e-6) and np.allclose(scores, best, atol=1e-6)
            assert set(np.flatnonzero(exact > best[-1] + 1e-6)) <= set(got.tolist())  # every row clearly in it


def test_the_best_rows_crowded_into_one_block_of_the_second_chunk_are_all_found() -> None:
    """Seeds are one row per block (the best of each): 40 near-tied best rows in one block leave 39 to the bound.

    The gallery spans two chunks (two scan threads); the crowded block and a decoy crowd just
    below it sit in the second, so the first floor comes from one of the best rows and decoys.
    """
    rng = np.random.default_rng(7)
    n = 2 * CHUNK + 1_000
    v = rng.standard_normal((n, 128)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = rng.standard_normal(128).astype(np.float32)
    q /= np.linalg.norm(q)

    def near(score: np.ndarray) -> np.ndarray:  # unit rows scoring ``score`` with q, the rest orthogonal noise
        noise = rng.standard_normal((len(score), 128)).astype(np.float32)
        noise -= (noise @ q)[:, None] * q
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        return score[:, None] * q + np.sqrt(1 - score**2)[:, None] * noise

    best = CHUNK + 3 * 256 + 100  # one block of the second chunk
    v[best:best + 40] = near(0.9 - 2e-5 * rng.permutation(40).astype(np.float32))
    decoys = CHUNK + 256 * rng.choice(np.arange(10, 250), 60, replace=False) + 17  # one per block, a bit lower
    v[decoys] = near(0.8985 - 2e-5 * rng.permutation(60).astype(np.float32))
    index = GalleryIndex(128, AnnOptions(), scan_threads=2)
    index.add(np.arange(n), np.arange(n), v)
    for m in (1, 20, 45, 70):
        want, got = exact_order(index, v, q, m)
        assert got.tolist() == want
    assert set(want[:40]) == set(range(best, best + 40))
    seeds = index._scanner.upper(index._codes[:n], np.ones(128, np.int8), []).seeds(64)
    assert len(seeds) == 64 and len(np.unique(seeds // 256)) == 64  # one row per block
