"""Voronoi mode of :func:`motiflab.hierarchy.build_hierarchy`: one cell per column.

For samples without a lattice every column is its own cell and two cells touch
when their Voronoi cells share a side. Components of touching minority cells
are merged when their labelled adjacency graphs are isomorphic, and a lower
motif-cell is linked to a higher one when its graph is a node-induced
subgraph of the higher one's (labels must match).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .errors import MotifLabError
from .hierarchy_result import Hierarchy, MotifCell
from .voronoi import voronoi_cells

__all__ = ["build_voronoi_hierarchy"]


def build_voronoi_hierarchy(p_all, names, codes, keep, max_level_gap, nearest, max_locations):
    """Hierarchy on Voronoi cells: one cell per column, adjacency = shared Voronoi side.

    Duplicates are merged when their labelled adjacency graphs are isomorphic
    (Weisfeiler-Lehman hash, confirmed by an exact isomorphism test for
    components of up to 60 cells). Containment uses node-induced subgraph
    isomorphism (labels must match).

    Parameters
    ----------
    p_all : ndarray (N, 2)
        All column positions (px).
    names : list
        Label names.
    codes : ndarray (N,) int
        Label code of every column.
    keep : ndarray (N,) bool
        Columns not dropped by ``ignore_labels``.
    max_level_gap, nearest, max_locations
        As for :func:`motiflab.hierarchy.build_hierarchy`.

    Returns
    -------
    Hierarchy
        Its ``notes`` are not yet emitted as warnings (the caller does that).

    Raises
    ------
    MotifLabError
        Fewer than 4 kept columns.
    """
    import networkx as nx
    from networkx.algorithms import isomorphism as iso
    from scipy.sparse.csgraph import connected_components

    notes: list[str] = []
    idx = np.flatnonzero(keep)
    p = p_all[idx]
    c = codes[idx]
    if len(p) < 4:
        raise MotifLabError(f"too few columns ({len(p)}) for a Voronoi tessellation; need at least 4")
    vc = voronoi_cells(p, with_polygons=False)
    ccount = np.bincount(c, minlength=len(names))
    order = np.lexsort((np.arange(len(names)), -ccount))
    order = order[ccount[order] > 0]
    rank = np.full(len(names), -1, np.int64)
    rank[order] = np.arange(len(order))
    cid = rank[c]
    if len(order) == 1:
        notes.append(
            f"all {len(p)} Voronoi cells have the same label: the hierarchy is just the host cell"
        )
    minority = cid > 0
    e = vc.edges
    e = e[minority[e[:, 0]] & minority[e[:, 1]]]
    from scipy.sparse import coo_matrix

    n = len(p)
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    n_cc, lab = connected_components(adj, directed=False)
    comps = {}
    for k in np.flatnonzero(minority):
        comps.setdefault(int(lab[k]), []).append(int(k))
    edges_by_comp: dict = {}
    for a, b in e:
        edges_by_comp.setdefault(int(lab[a]), []).append((int(a), int(b)))
    classes: list[dict] = []
    by_hash: dict = {}
    comp_class = {}
    for key in sorted(comps, key=lambda k: (len(comps[k]), comps[k][0])):
        members = comps[key]
        g = nx.Graph()
        for m in members:
            g.add_node(m, comp=int(cid[m]))
        g.add_edges_from(edges_by_comp.get(key, []))
        h = (len(members), nx.weisfeiler_lehman_graph_hash(g, node_attr="comp", iterations=3))
        found = None
        for ci in by_hash.get(h, []):
            ref = classes[ci]["graph"]
            if len(members) > 60 or nx.is_isomorphic(
                ref, g, node_match=lambda a, b: a["comp"] == b["comp"]
            ):
                found = ci
                break
        if found is None:
            found = len(classes)
            classes.append({"graph": g, "members": members, "occ": []})
            by_hash.setdefault(h, []).append(found)
        classes[found]["occ"].append(members)
        comp_class[key] = found
    n_types = len(order)

    def comp_list_of(label_counts):
        return [[names[k], int(v)] for k, v in sorted(label_counts.items())]

    nodes = [
        MotifCell(
            id=0, level=1, count=int(ccount[order[0]]), dominant=True,
            composition=[[names[order[0]], 1]], pattern=[[0.0, 0.0, 0]], locations=[],
            n_cells=int(ccount[order[0]]), pattern_edges=[],
        )
    ]
    singles = {}
    for ci, cl in enumerate(classes):
        if len(cl["members"]) == 1:
            singles[int(cid[cl["members"][0]])] = ci
    for t in range(1, n_types):
        ci = singles.get(t)
        occ = classes[ci]["occ"] if ci is not None else []
        locs = [{"ij": [int(idx[o[0]]), 0], "px": [float(p[o[0], 0]), float(p[o[0], 1])], "cells": [[int(idx[o[0]]), 0]]} for o in occ]
        nodes.append(
            MotifCell(
                id=t, level=1, count=len(occ), dominant=False, composition=[[names[order[t]], 1]],
                pattern=[[0.0, 0.0, t]], locations=locs if max_locations is None else locs[:max_locations],
                n_cells=int(ccount[order[t]]), pattern_edges=[],
            )
        )
    higher = [ci for ci, cl in enumerate(classes) if len(cl["members"]) > 1]
    higher.sort(key=lambda ci: (len(classes[ci]["members"]), -len(classes[ci]["occ"]), classes[ci]["members"][0]))
    graphs = {}
    for k, ci in enumerate(higher):
        cl = classes[ci]
        mem = cl["members"]
        pos0 = p[mem[0]]
        local = {m: q for q, m in enumerate(mem)}
        pattern = [[round(float(p[m, 0] - pos0[0]), 3), round(float(p[m, 1] - pos0[1]), 3), int(cid[m])] for m in mem]
        pedges = [[local[a], local[b]] for a, b in cl["graph"].edges()]
        labs = Counter(int(c[m]) for m in mem)
        locs = []
        for o in cl["occ"]:
            ctr = p[o].mean(axis=0)
            locs.append({"ij": [int(idx[o[0]]), 0], "px": [round(float(ctr[0]), 3), round(float(ctr[1]), 3)],
                         "cells": [[int(idx[m]), 0] for m in o]})
        node_id = n_types + k
        nodes.append(
            MotifCell(
                id=node_id, level=len(mem), count=len(cl["occ"]), dominant=False,
                composition=comp_list_of(labs), pattern=pattern,
                locations=locs if max_locations is None else locs[:max_locations],
                n_cells=len(mem) * len(cl["occ"]), pattern_edges=pedges,
            )
        )
        graphs[node_id] = cl["graph"]
    for t in range(1, n_types):
        g = nx.Graph()
        g.add_node(0, comp=t)
        graphs[t] = g
    # containment edges via node-induced subgraph isomorphism
    edges = []
    by_level: dict = {}
    for m in nodes[1:]:
        by_level.setdefault(m.level, []).append(m.id)
    lv_sorted = sorted(by_level)
    nm = lambda a, b: a["comp"] == b["comp"]  # noqa: E731
    for q in nodes[1:]:
        if q.level < 2:
            continue
        found_any = False
        for lv in sorted([x for x in lv_sorted if x < q.level], reverse=True):
            gap = q.level - lv
            within = max_level_gap is None or gap <= max_level_gap
            if not within and not (nearest and not found_any):
                break
            hits = [
                pid for pid in by_level[lv]
                if iso.GraphMatcher(graphs[q.id], graphs[pid], node_match=nm).subgraph_is_isomorphic()
            ]
            edges += [(pid, q.id) for pid in hits]
            found_any = found_any or bool(hits)
            if not within and found_any:
                break
    cell_component = np.full(n, -1, np.int64)
    comp_index = {key: k for k, key in enumerate(sorted(comps))}
    component_node = np.zeros(len(comp_index), np.int64)
    node_of_class = {ci: n_types + k for k, ci in enumerate(higher)}
    for t, ci in singles.items():
        node_of_class[ci] = t
    for key, k in comp_index.items():
        for m in comps[key]:
            cell_component[m] = k
        component_node[k] = node_of_class[comp_class[key]]
    column_cell = np.full(len(p_all), -1, np.int64)
    column_cell[idx] = np.arange(len(idx))
    return Hierarchy(
        lattice=None,
        motif_cells=nodes,
        edges=sorted(set(edges)),
        label_names=names,
        cells=np.column_stack([idx, np.zeros(len(idx), np.int64)]),
        cell_node=cid.astype(np.int64),
        cell_component=cell_component,
        component_node=component_node,
        column_cell=column_cell,
        params={"cells": "voronoi", "rotations": "graph-isomorphism", "neighborhood": "voronoi",
                "max_level_gap": max_level_gap, "nearest": nearest},
        notes=notes,
    )
