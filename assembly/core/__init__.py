"""The core: events, the transcript, the engine, views, and the member and protocol interfaces.

It knows no protocol and no model SDK. A run is a sequence of typed events
(`events`) appended durably to a transcript (`transcript`); the engine (`engine`)
drives a `Protocol`'s rounds, asking `Member`s concurrently under real deadlines;
views (`view`) are built in one place, where information isolation is enforced;
every figure (`metrics`) is a pure function of the events. What a protocol's
actions mean to views and metrics is declared by the action classes (`actions`),
and how they read in replay, report and the terminal by its `presentation`. `spec`
is the protocol-agnostic scenario vocabulary, `seating` and `topology` seat an
assembly, `seeding` derives every random stream from the run's seed.
"""
