"""`cookbook serve`: an OpenAI-compatible HTTP API over a run's checkpoint or a model.

- `errors`: the OpenAI error shape (`{"error": {"message", "type", "param", "code"}}`);
- `requests`: request bodies parsed and checked (unsupported parameters named);
- `model`: the served model: messages rendered with the run's renderer, sampled
  through the engine's SamplingClient, replies parsed back by the renderer;
- `admission`: the bounded queue in front of the sampler (429 when full, 503
  when a reply is not ready in time);
- `openai_format`: replies, stream chunks and logprobs in OpenAI's shapes;
- `app`: the Starlette routes; `server`: loading the model and running uvicorn.

Concurrent requests share the engine's sampler: the local engine batches every
`sample` call waiting for its model, and a call made while a batch decodes joins
it at the next step. Starlette and uvicorn are imported only by `app`/`server`.
"""
