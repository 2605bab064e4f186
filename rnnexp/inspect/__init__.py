"""A look inside a trained network: the model read over a text with every unit and gate kept
(trace.py), the units that track simple features of the text (units.py), and the page that
shows both (page.py: inspect.html, and gate_saturation.png for gated cells). A run writes
the page at its end; `rnnexp-inspect` (rnnexp/framework/inspect_command.py) for any text.
"""
