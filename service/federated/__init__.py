"""Federated sessions: many clients contribute, the server aggregates and steps.

    config.py       the `federation` block (pydantic), validated at creation
    staleness.py    FedAsync's staleness weights
    aggregate.py    mean, median, trimmed mean, (Multi-)Krum
    privacy.py      DP-FedAvg clipping and seeded Gaussian noise
    rounds.py       the round bookkeeping kept in the session's blob, and its bytes
    protocol.py     the rules: count a contribution, close a round (pure; no I/O)
    coordinator.py  the rules over the engine's compare-and-set; the long poll

Nothing here knows HTTP; `service/api/contributions.py` is the route.
"""
