"""Azure OpenAI, the lab's one provider, and what the kit builds on it.

- ``provider``: Azure's contract (variables, routes, secrets, errors and their hints, the stand-in's marks);
- ``quota``: the deployment's quota as Azure counts it (the pacer in the kernel, and the stand-in's);
- ``cassette``: the recorded calls (vcrpy) that replay the lab without Azure;
- ``standin``: a local server with Azure's REST contract (``rai-lab standin``); server code, which the
  learner's kernel never imports.

This file imports nothing: ``import rai_lab.azure.cassette.player`` loads the cassette, never the stand-in.
"""
