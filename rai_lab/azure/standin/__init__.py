"""A stand-in for Azure OpenAI: a real HTTP server on 127.0.0.1 that follows Azure's REST contract.

It answers chat completions with synthetic, deterministic text (same request, same answer)
so that the lab can be recorded and tested without Azure. Its answers are NOT a model's:
every response says so in ``system_fingerprint`` and in the ``x-rai-lab-standin`` header,
and cassettes recorded from it carry that provenance.

The contract followed (as Azure OpenAI answers it):

* ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``;
* no or unknown ``api-version`` -> 404 ``Resource not found``;
* ``api-key`` header (or ``Authorization: Bearer``) wrong or missing -> 401;
* unknown deployment -> 404 ``DeploymentNotFound``;
* over the deployment's quota -> 429 with ``retry-after``, ``retry-after-ms`` and
  ``x-ratelimit-remaining-*`` (rai_lab.azure.quota: tokens per minute as Azure estimates them, prompt
  tokens + ``max_tokens`` x ``max(n, best_of)``, and 6 requests per minute per 1,000 TPM, over
  10-second windows); a request larger than the whole quota -> 429 at once, asking to retry after a
  day as Azure does, and saying how large it is; every answer carries ``x-ratelimit-remaining-*``,
  ``x-request-id``, ``apim-request-id`` (UUIDs) and ``x-ms-region``;
* a prompt with a flagged word -> 400 ``content_filter`` with ``innererror``;
* 200: a ``chat.completion`` body with ``model`` the deployed model's version, ``usage`` (with its
  details), ``message.refusal``, and the content-filter annotations of the API version called
  (none before 2023-06-01-preview; ``prompt_filter_results`` and per-choice ``content_filter_results``
  from it; ``jailbreak`` and ``protected_material_*`` from 2023-12-01-preview: see shapes);
  ``finish_reason`` ``length`` when ``max_tokens`` cut it;
* a prompt with an output-filter word -> 200 whose choices have ``finish_reason``
  ``content_filter`` and no content (Azure's output filter).

The package, by concern: ``server`` (routes and options), ``shapes`` (Azure's bodies and errors, per
API version), ``limits`` (the quota, rai_lab.azure.quota's, on the server's clock), ``text`` (the synthetic
answers and their planted bias). ``python -m rai_lab.azure.standin --key K`` runs it, as ``rai-lab standin`` does.
"""

from rai_lab.azure.provider import STANDIN_HEADER, STANDIN_MARK
from rai_lab.azure.quota import Decision
from rai_lab.azure.standin.limits import RateLimiter
from rai_lab.azure.standin.server import (DEFAULT_DEPLOYMENTS, DEFAULT_FILTER_WORDS, DEFAULT_OUTPUT_FILTER_WORDS,
                                          StandinConfig, StandinHandler, StandinServer, add_arguments, run_from_args)
from rai_lab.azure.standin.shapes import API_VERSIONS, REGION, annotations
from rai_lab.azure.standin.text import (BIAS_PROFILES, DEFAULT_BIAS, DEFAULT_MITIGATED_BIAS,
                                        STEREOTYPED_SHARE_FEMALE, TRAITS, BiasProfile, compose_answer, count_tokens)

__all__ = [
    "API_VERSIONS", "BIAS_PROFILES", "DEFAULT_BIAS", "DEFAULT_DEPLOYMENTS", "DEFAULT_FILTER_WORDS",
    "DEFAULT_MITIGATED_BIAS", "DEFAULT_OUTPUT_FILTER_WORDS", "REGION", "STANDIN_HEADER", "STANDIN_MARK",
    "STEREOTYPED_SHARE_FEMALE", "TRAITS", "BiasProfile", "Decision", "RateLimiter", "StandinConfig",
    "StandinHandler", "StandinServer", "add_arguments", "annotations", "compose_answer", "count_tokens",
    "run_from_args",
]
