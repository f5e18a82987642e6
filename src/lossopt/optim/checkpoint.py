"""What an optimizer saved, brought back: a state_dict checked against the
optimizer before anything loads, and an older pickle given what it lacks."""

from __future__ import annotations

from typing import Any

import torch


def checked(param_groups: list[dict[str, Any]], state_dict: Any) -> dict[str, Any]:
    """``state_dict`` with its parameters in the optimizer's order, after
    checking that it fits ``param_groups``: the group count, each group's
    parameter count, every state tensor's shape against its parameter, and,
    where both sides name their parameters, the names. A mismatch raises a
    ValueError that lists every problem; nothing is changed."""
    if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
        raise ValueError("state_dict must be a dict with 'state' and 'param_groups'")
    saved_groups = state_dict["param_groups"]
    if len(saved_groups) != len(param_groups):
        raise ValueError(
            f"state_dict has {len(saved_groups)} parameter groups, "
            f"the optimizer has {len(param_groups)}"
        )
    state_dict = _match_names(param_groups, state_dict)
    problems = []
    saved_state = state_dict["state"]
    for g, (group, saved) in enumerate(zip(param_groups, state_dict["param_groups"], strict=True)):
        if len(group["params"]) != len(saved["params"]):
            problems.append(
                f"group {g} has {len(saved['params'])} parameters in the state_dict, "
                f"{len(group['params'])} in the optimizer"
            )
            continue
        for i, (p, key) in enumerate(zip(group["params"], saved["params"], strict=True)):
            for name, value in saved_state.get(key, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != p.shape:
                    problems.append(
                        f"group {g}, index {i}: state '{name}' has shape "
                        f"{tuple(value.shape)}, the parameter {tuple(p.shape)}"
                    )
    if problems:
        raise ValueError("state_dict does not fit this optimizer: " + "; ".join(problems))
    return state_dict


def _match_names(param_groups: list[dict[str, Any]], state_dict: dict[str, Any]) -> dict[str, Any]:
    """Reorder each saved group's parameter ids to the optimizer's name order
    (``param_names``, from ``named_parameters()``), when both sides have names."""
    saved_groups = state_dict["param_groups"]
    if not all("param_names" in g for g in (*saved_groups, *param_groups)):
        return state_dict
    groups, problems = [], []
    for g, (group, saved) in enumerate(zip(param_groups, saved_groups, strict=True)):
        ids = dict(zip(saved["param_names"], saved["params"], strict=True))
        missing = [n for n in group["param_names"] if n not in ids]
        unexpected = [n for n in saved["param_names"] if n not in set(group["param_names"])]
        if missing or unexpected:
            problems.append(
                f"group {g}: missing from the state_dict {missing}, "
                f"not in the optimizer {unexpected}"
            )
            continue
        order = [ids[n] for n in group["param_names"]]
        groups.append({**saved, "params": order, "param_names": list(group["param_names"])})
    if problems:
        raise ValueError("state_dict names other parameters: " + "; ".join(problems))
    return {**state_dict, "param_groups": groups}


def fill_older_pickle(
    optimizer: torch.optim.Optimizer,
    attributes: dict[str, Any],
    group_keys: dict[str, Any],
) -> None:
    """Give an unpickled optimizer the attributes and group keys that its
    pickle, made by an older lossopt or torch, may lack, with their defaults."""
    own = optimizer.__dict__
    if "skipped_steps" in own:  # pickled before it was a property
        own["_skipped"] = own.pop("skipped_steps")
    for name, value in attributes.items():
        own.setdefault(name, value)
    own.setdefault("_skipped_on_device", {})
    own["_foreach_memo"] = {}  # ids of another process's lists mean nothing
    for key, value in group_keys.items():
        optimizer.defaults.setdefault(key, value)
    for group in optimizer.param_groups:
        for key, value in optimizer.defaults.items():
            if key != "params":
                group.setdefault(key, value)
