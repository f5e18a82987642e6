"""The live lab: every idea of the lecture as an explorable, computed by lossopt
on each change of a knob and drawn in the browser.

`explorables` holds the catalogue (name -> Explorable: its knobs, once, and the
function that turns their values into figure specs and numbers); `server` is the
local ASGI app that serves the page and the JSON API. Importing this package
imports neither.
"""
