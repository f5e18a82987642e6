"""Every explorable of the live lab, in the lecture's order: name -> Explorable."""

from __future__ import annotations

from lossopt.lab.live import optimization

EXPLORABLES = {explorable.name: explorable for explorable in (*optimization.EXPLORABLES,)}
