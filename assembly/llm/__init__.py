"""The LLM layer: the only part of `assembly` that imports autogen, openai or litellm.

Seats played by models live here and nowhere else, so a model SDK can be swapped
in one folder: `profiles` and the run's `setup` (which models, which cache), `keys`
(scrubbing), the model-client stack (`transport`, `litellm_client`, `wrappers`,
`rate_limit`, `response_cache`, `clients`), the `structured` call with its `errors`
and `cost`, the LLM `member` and its factory, `check` and `local_server`. The
run's setup is passed explicitly to the member factory; what is process-wide (the
rate limiters, the key registry, open disk caches) is so on purpose, and says why.
"""
