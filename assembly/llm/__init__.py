"""The LLM layer: the only part of `assembly` that imports autogen, openai or litellm.

Profiles (`profiles`), the run's model setup built from flags and files (`setup`),
model clients and their wrappers (`client`), the LLM member (`member`), and the
reachability check (`check`). The run's setup is passed explicitly to the member
factory; nothing here is process-global except the rate limiter, which is shared
on purpose (one provider, one budget).
"""
