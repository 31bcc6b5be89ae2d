"""Bodies and rules published by Comfy and ComfyUI's own client, as Python
literals.  Each value names its source; where a body is built from a published
model (not copied from an example) the comment says how."""

# ComfyUI comfy_api_nodes/apis/magnific.py, TaskResponse:
#   status: str = Field(validation_alias=AliasChoices("status", "task_status"))
#   unwraps "data" when it is a dict.  A body that uses the alias:
TASK_STATUS_ALIAS = {"data": {"task_id": "046b6c7f-0b8a-43b9-b35d-6489e6daee91",
                              "task_status": "COMPLETED",
                              "generated": ["https://ai-statics.freepik.com/content/relight/046b6c7f.jpg"]}}
TASK_STATUS_ALIAS_BARE = {"task_id": "046b6c7f-0b8a-43b9-b35d-6489e6daee91", "task_status": "IN_PROGRESS",
                          "generated": None}

# ComfyUI comfy_api_nodes/util/client.py (commit d7174078), the poller's defaults,
# compared after _normalize_status_value (lower-cased):
COMPLETED_STATUSES = ["succeeded", "succeed", "success", "completed", "finished", "done"]
FAILED_STATUSES = ["cancelled", "canceled", "fail", "failed", "error"]
QUEUED_STATUSES = ["created", "queued", "queueing", "submitted"]

# ComfyUI comfy_api_nodes/util/client.py, _friendly_http_message(409, body):
MESSAGE_409 = "There is a problem with your account. Please contact support@comfy.org."

# ComfyUI comfy_api_nodes/util/_helpers.py, get_auth_header: a Firebase token goes in
# {"Authorization": f"Bearer {token}"}, else an API key in {"X-API-KEY": key}; never both.
AUTH_HEADER_FOR_API_KEY = "X-API-KEY"
AUTH_HEADER_FOR_TOKEN = "Authorization"

# ComfyUI comfy_api_nodes/nodes_magnific.py (commit 7de7af82): create path -> poll path.
CREATE_TO_POLL = {
    "/proxy/freepik/v1/ai/image-upscaler": "/proxy/freepik/v1/ai/image-upscaler/{task_id}",
    "/proxy/freepik/v1/ai/image-upscaler-precision-v2": "/proxy/freepik/v1/ai/image-upscaler-precision-v2/{task_id}",
    "/proxy/freepik/v1/ai/image-style-transfer": "/proxy/freepik/v1/ai/image-style-transfer/{task_id}",
    "/proxy/freepik/v1/ai/image-relight": "/proxy/freepik/v1/ai/image-relight/{task_id}",
    "/proxy/freepik/v1/ai/skin-enhancer/creative": "/proxy/freepik/v1/ai/skin-enhancer/{task_id}",
    "/proxy/freepik/v1/ai/skin-enhancer/faithful": "/proxy/freepik/v1/ai/skin-enhancer/{task_id}",
    "/proxy/freepik/v1/ai/skin-enhancer/flexible": "/proxy/freepik/v1/ai/skin-enhancer/{task_id}",
}

# Comfy-Org/comfy-cli comfy_cli/cloud/billing.py: BALANCE_FIELDS, walked in order,
# "returns the first NON-ZERO value" (select_effective_balance_micros).
BALANCE_FIELDS = ("effective_balance_micros", "amount_micros", "prepaid_balance_micros",
                  "cloud_credit_balance_micros")
# Comfy-Org/ComfyUI_frontend billing test fixture (positiveBalance), all cents:
BALANCE_POSITIVE = {"amount_micros": 5_000_000, "currency": "USD", "effective_balance_micros": 5_000_000,
                    "prepaid_balance_micros": 3_000_000, "cloud_credit_balance_micros": 2_000_000}
# The case comfy-cli's chain exists for (its comment: "a present-but-zero high-priority
# field used to mask a positive component underneath it"): the same shape, effective 0.
BALANCE_ZERO_EFFECTIVE = {"amount_micros": 0, "currency": "usd", "effective_balance_micros": 0,
                          "prepaid_balance_micros": 1500, "cloud_credit_balance_micros": 0}
