"""Traffic replay: MovieLens users played through the live REST API, clicking only what they truly liked.

`plan` picks the users and what they liked, `replay` plays them through the API, `run` wires both
to a command (`movierec simulate`, `movierec seed-demo`).
"""
