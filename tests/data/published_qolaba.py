"""Bodies of Qolaba's ML API, as its backend code builds them (the code that
appears to be Qolaba's server: aumritThought/qolaba_modal_docs), and its docs.

APITaskResponse (src/data_models/ModalAppSchemas.py):
    time_required: Optional[dict] = {}; error: Optional[str] = None;
    error_data: Optional[str | dict] = None; input: Optional[dict] = {};
    output: Optional[dict | list] = {}; task_id: Optional[str] = None;
    status: Literal["SUCCESS", "FAILED", "PENDING"] = "PENDING"
"""

# src/utils/Exceptions.py handle_exceptions: EVERY exception of a route becomes
# APITaskResponse(error=INTERNAL_ERROR, error_data=str(exc.args), status="FAILED")
# with HTTP 500 -- a Redis outage included.  The body issue 11 quotes, as
# model_dump() gives it:
INFRA_500 = {"time_required": {}, "error": "Internal Error",
             "error_data": "('Error 111 connecting to redis:6379. Connection refused.',)",
             "input": {}, "output": {}, "task_id": None, "status": "FAILED"}
# ... and the short form quoted in the issue
INFRA_500_SHORT = {"error": "Internal Error",
                   "error_data": "('Error 111 connecting to redis:6379. Connection refused.',)",
                   "status": "FAILED", "task_id": None}

# src/FastAPIServer/celery/Worker.py create_task: on success
#   APITaskResponse(status="SUCCESS", input=parameters.model_dump(),
#                   output={"result": [...], "Has_NSFW_Content": [...]}, time_required=...)
# -- task_id stays None and the app id is only inside input (APIInput.app_id).
SUCCESS = {"time_required": {"startup_time": 0.41, "runtime": 7.93}, "error": None, "error_data": None,
           "input": {"app_id": "sdxl-text2img", "parameters": {"prompt": "a red fox"}, "init_parameters": {},
                     "ref_id": "", "celery": True, "inference_type": "a10g", "upscale": False},
           "output": {"result": ["https://storage.googleapis.com/qolaba/results/9d1c-0.png"],
                      "Has_NSFW_Content": [False]},
           "task_id": None, "status": "SUCCESS"}

# Worker.py task_gen: on enqueue, status=task.status, which is Celery's "PENDING"
# (Celery answers PENDING for any id it never saw, or whose result expired:
# result_expires = CELERY_RESULT_EXPIRATION_TIME).
PENDING = {"time_required": {}, "error": None, "error_data": None,
           "input": {"app_id": "sdxl-text2img", "parameters": {}, "init_parameters": {}, "ref_id": "",
                     "celery": True, "inference_type": "a10g", "upscale": False},
           "output": {}, "task_id": "9d1c7a52-1f0b-4b7e-9a7e-3f1c2d4e5f60", "status": "PENDING"}

# A task that really failed, answered with 200 (status FAILED) -- final.
FAILED_200 = {"time_required": {}, "error": "Internal Error", "error_data": "CUDA out of memory",
              "input": {"app_id": "sdxl-text2img"}, "output": {}, "task_id": None, "status": "FAILED"}
