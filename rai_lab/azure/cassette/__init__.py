"""vcrpy cassettes of the Azure OpenAI calls: replay offline, record live, scrubbed of secrets.

By concern:
- ``player``: the cassette in use (``use``, ``KitCassette``): how a recorded answer is found and played, how a live
  exchange is saved as it happens;
- ``scrub``: what a recorded exchange keeps (no header but a few, no host, no secret);
- ``calls``: what the call log keeps of an exchange (the request, the answers, what Azure's filter withheld);
- ``files``: a cassette file: read safely, its provenance, its path as a learner reads it.

This file imports nothing: each caller imports the part it uses.
"""
