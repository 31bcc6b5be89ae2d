"""Bodies published by EvoLink, as Python literals, each with its source."""

# docs.evolink.ai get-task-detail (OpenAPI of GET /v1/tasks/{task_id}), the 400 example:
INVALID_TASK_ID_400 = {"error": {"code": "invalid_task_id",
                                 "message": "Invalid task ID format, must start with 'task-unified-'",
                                 "type": "invalid_request_error", "param": "task_id"}}
# seeds/evolink-task-detail.md, the same page's older 400 example (code as an integer):
SEED_400 = {"error": {"code": 400, "message": "Invalid task ID format", "type": "invalid_request_error",
                      "param": "task_id"}}

# A failed task whose error.code is "request_cancelled": the code is listed as a
# non-retryable business code in EvoLinkAI/evolink-media-mcp error-handler.ts; a
# cancelled task "shows up as status: failed with error.code: request_cancelled".
# The task object is the seed's (seeds/evolink-task-detail.md) with that error.
CANCELLED_TASK = {"created": 1756817821, "id": "task-unified-1756817821-4x3rx6ny", "model": "gpt-4o-image",
                  "object": "image.generation.task", "progress": 30, "results": [], "status": "failed",
                  "task_info": {"can_cancel": False}, "type": "image",
                  "error": {"code": "request_cancelled", "message": "Request cancelled", "type": "task_error"}}

# docs.evolink.ai/en/api-manual/account-management/get-credits, the 200 example:
CREDITS = {"data": {"token": {"remaining_credits": 99416.4429, "unlimited_credits": False,
                              "used_credits": 583.5571},
                    "user": {"remaining_credits": 1095.3996, "used_credits": 135.9048}},
           "message": "", "success": True}
