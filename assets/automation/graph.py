"""Walking the asset graph: the known refresh chain of a landed partition, and everything an asset reads from
(never from a list of models)."""

from collections.abc import Iterable

import dagster as dg


def is_automated(node) -> bool:
    return node.is_materializable and node.automation_condition is not None


def _closure(asset_graph, roots: Iterable[dg.AssetKey], admit=lambda node: True) -> set[dg.AssetKey]:
    found: set[dg.AssetKey] = set()
    frontier = list(roots)
    while frontier:
        for child in asset_graph.get(frontier.pop()).child_keys:
            node = asset_graph.get(child)
            if child not in found and admit(node):
                found.add(child)
                frontier.append(child)
    return found


def refresh_chain(asset_graph, root: dg.AssetKey) -> list[dg.AssetKey]:
    """`root` and the automated assets downstream of it that one run with `root`'s partition key can refresh:
    those sharing its partitions definition (the same partition), then the unpartitioned ones after them, such
    as silver/content_documents and the vector index. Partitioned assets of another partitioning cannot share
    the run; reconciliation refreshes them."""
    partitions_def = asset_graph.get(root).partitions_def
    same = (
        _closure(
            asset_graph, [root], lambda node: is_automated(node) and node.partitions_def == partitions_def
        )
        if partitions_def
        else set()
    )
    tail = _closure(
        asset_graph, [root, *same], lambda node: is_automated(node) and node.partitions_def is None
    )
    ordered = [key for key in asset_graph.toposorted_asset_keys if key in same | tail]
    return [root, *ordered]


def upstream_of(asset_graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    """Everything `key` or one of its checks reads from, transitively."""
    direct = set(asset_graph.get(key).parent_keys)
    for check_key in asset_graph.get(key).check_keys:
        direct |= {k for k in asset_graph.get(check_key).parent_entity_keys if isinstance(k, dg.AssetKey)}
    direct.discard(key)
    found = set(direct)
    for parent in direct:
        found |= asset_graph.get_ancestor_asset_keys(parent)
    return found


def downstream_of(asset_graph, keys: Iterable[dg.AssetKey]) -> set[dg.AssetKey]:
    """Everything built from `keys`, transitively."""
    return _closure(asset_graph, keys)


Wave = list[tuple[dg.PartitionsDefinition | None, list[dg.AssetKey]]]


def join_wave(wave: Wave, key: dg.AssetKey, partitions_def, waiting_on: set[dg.AssetKey]) -> bool:
    """Add `key` to the run of its partitioning in `wave`, unless it waits on an asset outside that run (a run
    builds its assets in order, so waiting only on assets of the same run is fine). Returns whether it joined."""
    group = next((keys for pd, keys in wave if pd == partitions_def), None)
    if waiting_on and not (group and waiting_on <= set(group)):
        return False
    if group is None:
        wave.append((partitions_def, [key]))
    else:
        group.append(key)
    return True
