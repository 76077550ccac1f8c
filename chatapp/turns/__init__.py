"""A turn, from the send to the last frame: the writes that start, retry or continue one
(`services`, checked by `limits`), the request it sends (`requests`), the run that streams and
saves the answer (`run`, `persistence`) under this process's `manager` and `workers`, the
stream protocol (`protocol`) and the SSE consumer that relays it to a browser (`consumer`)."""
