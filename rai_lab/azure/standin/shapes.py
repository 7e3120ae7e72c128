"""Azure OpenAI's answers as the stand-in gives them: the API versions it knows, the chat.completion body
with the content-filter annotations of the version it is called with, and Azure's error bodies.

What each API version returns is read from Azure's REST specs (github.com/Azure/azure-rest-api-specs,
specification/cognitiveservices/data-plane/AzureOpenAI/inference/{preview,stable}/<version>/inference.json):

* 2023-03-15-preview (the exercise's) and 2023-05-15: no content-filter annotations in a 200;
* 2023-06-01-preview: ``prompt_filter_results`` (``prompt_index`` and ``content_filter_results``) and
  each choice's ``content_filter_results``, over hate, self_harm, sexual and violence (``filtered``,
  ``severity``); the same through 2023-10-01-preview. The prompt's object was first named
  ``prompt_annotations``; it was renamed in place, in every preview version, in September 2023
  (azure-rest-api-specs pull request 25880), so no version answers ``prompt_annotations`` today;
* 2023-12-01-preview, and 2024-02-01 and every version after: ``jailbreak`` in the prompt's results,
  ``protected_material_text`` and ``protected_material_code`` in each choice's (``filtered``, ``detected``).
"""

from __future__ import annotations

from rai_lab.azure.provider import NEVER_RETRY_SECONDS

REGION = "Sweden Central"  # one of the exercise's regions; Azure names the serving region in x-ms-region

API_VERSIONS = (
    "2023-03-15-preview",
    "2023-05-15",
    "2023-06-01-preview",
    "2023-07-01-preview",
    "2023-08-01-preview",
    "2023-09-01-preview",
    "2023-12-01-preview",
    "2024-02-01",
    "2024-02-15-preview",
    "2024-03-01-preview",
    "2024-04-01-preview",
    "2024-05-01-preview",
    "2024-06-01",
    "2024-07-01-preview",
    "2024-08-01-preview",
    "2024-09-01-preview",
    "2024-10-01-preview",
    "2024-10-21",
    "2024-12-01-preview",
    "2025-01-01-preview",
)
ANNOTATED_FROM = "2023-06-01-preview"  # prompt_filter_results and each choice's content_filter_results
PROMPT_SHIELDS_FROM = "2023-12-01-preview"  # jailbreak (prompt) and protected_material_* (choices)

_SAFE_FILTER = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
_SHIELDED_PROMPT = {**_SAFE_FILTER, "jailbreak": {"filtered": False, "detected": False}}
_SHIELDED_ANSWER = {**_SAFE_FILTER, "protected_material_code": {"filtered": False, "detected": False},
                    "protected_material_text": {"filtered": False, "detected": False}}


def _since(version: str, first: str) -> bool:
    return version[:10] >= first[:10]  # versions are dates (YYYY-MM-DD), some with -preview after


def annotations(version: str) -> tuple[dict, dict] | None:
    """The content-filter results Azure adds to a 200 at this API version: (the prompt's, each choice's),
    or None for a version that adds none."""
    if not _since(version, ANNOTATED_FROM):
        return None
    if not _since(version, PROMPT_SHIELDS_FROM):
        return _SAFE_FILTER, _SAFE_FILTER
    return _SHIELDED_PROMPT, _SHIELDED_ANSWER


def choice(index: int, text: str, finish: str, version: str) -> dict:
    """One choice of a chat.completion."""
    made = {"index": index, "finish_reason": finish, "message": {"role": "assistant", "content": text, "refusal": None}}
    found = annotations(version)
    if found:
        made["content_filter_results"] = found[1]
    made["logprobs"] = None
    return made


def filtered_choice(index: int, version: str) -> dict:
    """A choice Azure's output filter withheld: finish_reason content_filter and no content (a 200)."""
    made = {"index": index, "finish_reason": "content_filter",
            "message": {"role": "assistant", "content": None, "refusal": None}}
    found = annotations(version)
    if found:
        made["content_filter_results"] = dict(found[1], violence={"filtered": True, "severity": "medium"})
    made["logprobs"] = None
    return made


def completion(answer_id: str, model: str, fingerprint: str, choices: list[dict], prompt_tokens: int,
               completion_tokens: int, created: int, version: str) -> dict:
    """A chat.completion body, with the prompt's filter results when the version has them."""
    body = {"id": answer_id, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": fingerprint}
    found = annotations(version)
    if found:
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": found[0]}]
    body["choices"] = choices
    body["usage"] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens_details": {"accepted_prediction_tokens": 0, "audio_tokens": 0,
                                      "reasoning_tokens": 0, "rejected_prediction_tokens": 0},
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
    }
    return body


# -- errors ----------------------------------------------------------------------------------------
def error(code: str, message: str, **extra) -> dict:
    """Azure's error body: {"error": {"code", "message", ...}}."""
    return {"error": {"code": code, "message": message, **extra}}


RESOURCE_NOT_FOUND = error("404", "Resource not found")  # no or unknown api-version, or another path
UNAUTHORIZED = error(
    "401",
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource.",
)
DEPLOYMENT_NOT_FOUND = error(
    "DeploymentNotFound",
    "The API deployment for this resource does not exist. If you created the deployment within the last "
    "5 minutes, please wait a moment and try again.",
)
MESSAGES_REQUIRED = error("BadRequest", "'messages' is a required property", param="messages",
                          type="invalid_request_error")


def prompt_filtered() -> dict:
    """The 400 of Azure's prompt filter (violence, high)."""
    return {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
            "policy. Please modify your prompt and retry. To learn more about our content filtering policies please "
            "read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": dict(_SAFE_FILTER, violence={"filtered": True, "severity": "high"}),
            },
        }
    }


def _rate_limit_message(version: str, what: str, seconds: int) -> str:
    return (f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {version} have "
            f"exceeded {what} of your current OpenAI S0 pricing tier. Please retry after {seconds} seconds. Please "
            "go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.")


def rate_limited(version: str, limit: str, seconds: int) -> dict:
    """The 429 of a request over the quota's tokens ("tokens") or requests per minute ("requests")."""
    what = "token rate limit" if limit == "tokens" else "call rate limit"
    return error("429", _rate_limit_message(version, what, seconds))


def too_large(version: str, tokens: int, tpm: int) -> dict:
    """The 429 of a request larger than the whole quota: Azure's words, which ask to retry after a day,
    then the stand-in's own sentence saying how large it is, the quota, and what to change."""
    return error("429", _rate_limit_message(version, "token rate limit", NEVER_RETRY_SECONDS)
                 + f" (rai-lab stand-in: this request counts {tokens:,} tokens, prompt tokens + max_tokens × n, "
                 f"more than the deployment's whole quota of {tpm:,} tokens per minute, so it can never pass. Raise "
                 "the deployment's tokens-per-minute limit, or lower max_tokens or n.)")
