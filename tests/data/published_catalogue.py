"""Status answers of the catalogue's vendors, as their docs, SDKs or ComfyUI's
comfy_api_nodes publish them (the source beside each).  Written from those
sources, not from the catalogue files: a test reads each with the catalogue
entry and checks the Task.

Provenance, per body (the comment above it says which):
  [P] copied from the page named (ids and links shortened where it masks them, "xxx");
  [S] assembled from the schema named (field names and types as published), values
      illustrative.  The error bodies of 4xx answers are [S] unless marked: for
      those, the HTTP status decides the error class, the body only gives the text.
Vendor pages that publish a whole example for every state are rare; where a [P]
body exists for one state, the others of the same vendor keep its fields.

Each case: (label, HTTP status, body, expected), expected being Task fields
(or {"raises": ErrorClassName}) to compare.
"""

from __future__ import annotations

COMFY = "github:Comfy-Org/ComfyUI@a125cd84 comfy_api_nodes"

CASES: dict[str, list[tuple[str, int, object, dict]]] = {
    "kling": [
        # [P] Kling's official answer format, as reproduced in a reseller's "official format" page
        # (gpt.morphogen.top/en/video/keling/query-results-official.html) and v98store.com/html_docs/api-243012261.html;
        # fields as ComfyUI's apis/__init__.py Data4/Data7 (created_at ms, task_status_msg, task_result).
        ("success (image generation)", 200, {
            "code": 0,
            "data": {
                "task_id": "CjMT7WdSwWcAAAAAALvB3g", "created_at": 1733851336696, "updated_at": 1733851344553,
                "task_result": {"images": [{"id": "", "url": "https://cdn.klingai.com/bs2/upload-kling-api/0923471513/image/CjMT7WdSwWcAAAAAALvB3g-0_raw_image_0.png"}]},
                "task_status": "succeed", "task_status_msg": "",
            },
            "message": "SUCCEED", "request_id": "CjNTkGdSwxYAAAAAALud5A",
        }, {"state": "succeeded", "provider_status": "succeed",
            "results": ["https://cdn.klingai.com/bs2/upload-kling-api/0923471513/image/CjMT7WdSwWcAAAAAALvB3g-0_raw_image_0.png"],
            "created_at": 1733851336.696}),
        # [S] ComfyUI apis/__init__.py KlingVideoResult {duration, id, url} under task_result.videos.
        ("success (video)", 200, {
            "code": 0, "message": "SUCCEED", "request_id": "r1",
            "data": {"task_id": "866168216002236456", "task_status": "succeed", "task_status_msg": "",
                     "created_at": 1774805076166, "updated_at": 1774805190000,
                     "task_result": {"videos": [{"id": "v1", "url": "https://cdn.klingai.com/video/v1.mp4", "duration": "5"}]}},
        }, {"state": "succeeded", "results": ["https://cdn.klingai.com/video/v1.mp4"]}),
        # [P] the answer to a create, as a published request log shows it (task_status submitted;
        # m-macmini.tail568a50.ts.net/youtube-automation/logs/requests/1774805076247_text2video.json).
        ("running (submitted)", 200, {
            "code": 0, "message": "SUCCEED", "request_id": "c0656403-1e6e-4b7e-b8f8-2cdd2595f2b9",
            "data": {"task_id": "867283741759111202", "task_status": "submitted",
                     "task_info": {"external_task_id": "text2video_kling_v3_final-1774805076"},
                     "created_at": 1774805076166, "updated_at": 1774805076166},
        }, {"state": "queued", "provider_status": "submitted", "results": []}),
        # [S] as above, task_status processing (KlingTaskStatus).
        ("running (processing)", 200, {
            "code": 0, "message": "SUCCEED", "request_id": "r2",
            "data": {"task_id": "867283741759111202", "task_status": "processing", "task_status_msg": "",
                     "created_at": 1774805076166, "updated_at": 1774805096166},
        }, {"state": "running"}),
        # [S] KlingTaskStatus.failed with task_status_msg (ComfyUI raises it as the failure text).
        ("failure", 200, {
            "code": 0, "message": "SUCCEED", "request_id": "r3",
            "data": {"task_id": "867283741759111202", "task_status": "failed",
                     "task_status_msg": "Failure to pass the risk control system",
                     "created_at": 1774805076166, "updated_at": 1774805096166},
        }, {"state": "failed", "error": "Failure to pass the risk control system"}),
        # [S] KlingErrorResponse (ComfyUI apis/__init__.py): 1203 "Requested resource does not exist".
        ("not found", 404, {"code": 1203, "message": "task not found", "request_id": "r4"},
         {"raises": "NotFound"}),
        ("not found in a 200", 200, {"code": 1203, "message": "task not found", "request_id": "r5"},
         {"raises": "NotFound"}),
    ],
    "runway": [
        # [P] docs.dev.runwayml.com/assets/outputs ("API Output Formats"): the GET /v1/tasks/:id answer of a
        # succeeded task, whole, as Runway's own page prints it (the _jwt value elided there too).
        ("success (Runway's page)", 200, {"id": "d2e3d1f4-1b3c-4b5c-8d46-1c1d7ee86892", "status": "SUCCEEDED",
                                         "createdAt": "2024-06-27T19:49:32.335Z",
                                         "output": ["https://dnznrvs05pmza.cloudfront.net/output.mp4?_jwt=..."]},
         {"state": "succeeded", "results": ["https://dnznrvs05pmza.cloudfront.net/output.mp4?_jwt=..."],
          "created_at": 1719517772.335}),
        # [S] github:runwayml/sdk-python src/runwayml/types/task_retrieve_response.py (id, createdAt, status,
        # failure, failureCode, output, progress 0..1); docs.dev.runwayml.com Task management examples.
        ("success", 200, {"id": "17f20503-6c24-4c16-946b-35dbbce2af2f", "status": "SUCCEEDED",
                          "createdAt": "2024-06-27T19:49:32.334Z",
                          "output": ["https://dnznrvs05pmza.cloudfront.net/output.mp4?_jwt=x"]},
         {"state": "succeeded", "results": ["https://dnznrvs05pmza.cloudfront.net/output.mp4?_jwt=x"],
          "created_at": 1719517772.334}),
        ("running", 200, {"id": "17f20503-6c24-4c16-946b-35dbbce2af2f", "status": "RUNNING",
                          "createdAt": "2024-06-27T19:49:32.334Z", "progress": 0.4},
         {"state": "running", "progress": 40.0}),
        ("throttled", 200, {"id": "17f20503", "status": "THROTTLED", "createdAt": "2024-06-27T19:49:32.334Z"},
         {"state": "queued"}),
        ("failure", 200, {"id": "17f20503", "status": "FAILED", "createdAt": "2024-06-27T19:49:32.334Z",
                          "failure": "An unexpected error occurred.", "failureCode": "INTERNAL.BAD_OUTPUT.CODE01"},
         {"state": "failed", "error": "An unexpected error occurred."}),
        ("cancelled", 200, {"id": "17f20503", "status": "CANCELLED", "createdAt": "2024-06-27T19:49:32.334Z"},
         {"state": "cancelled"}),
        # [S] docs.dev.runwayml.com: GET /v1/tasks/{id} answers 404 for a deleted or unknown task.
        ("not found", 404, {"error": "Task not found"}, {"raises": "NotFound"}),
    ],
    "luma": [
        # [S] ComfyUI apis/luma_api.py LumaGeneration {id, generation_type, state, failure_reason, created_at,
        # assets {video, image}, model}; github:lumalabs/lumaai-api openapi.yaml Generation example.
        ("success", 200, {"id": "d1968551-6113-4b46-b567-09210c2e79b0", "generation_type": "video",
                          "state": "completed", "failure_reason": None,
                          "created_at": "2024-11-22T08:45:47.713Z",
                          "assets": {"video": "https://storage.cdn-luma.com/dream_machine/a/b.mp4"},
                          "model": "ray-2", "request": {"prompt": "a tiger"}},
         {"state": "succeeded", "results": ["https://storage.cdn-luma.com/dream_machine/a/b.mp4"],
          "model": "ray-2", "created_at": 1732265147.713}),
        # [P] github:lumalabs/lumaai-api openapi.yaml (v1alpha), components.schemas.Generation.example.
        ("success (v1alpha example)", 200, {
            "id": "123e4567-e89b-12d3-a456-426614174000", "state": "completed", "state_reason": None,
            "created_at": "2023-06-01T12:00:00Z", "updated_at": "2023-06-01T12:05:00Z",
            "assets": {"thumbnail": "https://example.com/thumbnail.jpg", "video": "https://example.com/video.mp4"},
            "version": "v1.6",
            "request": {"prompt": "A serene lake surrounded by mountains at sunset", "enhance_prompt": True,
                        "aspect_ratio": "16:9", "negative_prompt": "cloudy, stormy", "loop": True,
                        "keyframes": {"frame0": {"imageUrl": "https://example.com/image.jpg"},
                                      "frame1": {"gen_id": "123e4567-e89b-12d3-a456-426614174000"}}}},
         {"state": "succeeded", "results": ["https://example.com/video.mp4"], "model": "v1.6",
          "created_at": 1685620800.0}),
        # [P] github:lumalabs/lumaai-api@2520034 openapi.yaml components.schemas.Generation.example (the
        # current schema: model, failure_reason), whole.
        ("success (openapi.yaml Generation example)", 200, {
            "id": "123e4567-e89b-12d3-a456-426614174000", "state": "completed", "failure_reason": None,
            "created_at": "2023-06-01T12:00:00Z", "assets": {"video": "https://example.com/video.mp4"},
            "model": "ray-1-6",
            "request": {"prompt": "A serene lake surrounded by mountains at sunset", "aspect_ratio": "16:9",
                        "loop": True,
                        "keyframes": {"frame0": {"type": "image", "url": "https://example.com/image.jpg"},
                                      "frame1": {"type": "generation", "id": "123e4567-e89b-12d3-a456-426614174000"}}}},
         {"state": "succeeded", "results": ["https://example.com/video.mp4"], "model": "ray-1-6",
          "created_at": 1685620800.0, "error": None}),
        # [P] the same file, components.schemas.Error.example, the "default" answer of GET /generations/{id}.
        ("bad key (openapi.yaml Error example)", 401, {"detail": "Invalid API key is provided"},
         {"raises": "AuthError"}),
        # [S] as ComfyUI's LumaGeneration, state dreaming.
        ("running", 200, {"id": "d1968551", "generation_type": "video", "state": "dreaming",
                          "created_at": "2024-11-22T08:45:47.713Z", "assets": None, "model": "ray-2"},
         {"state": "running", "results": []}),
        ("queued", 200, {"id": "d1968551", "generation_type": "image", "state": "queued",
                         "created_at": "2024-11-22T08:45:47.713Z", "model": "photon-1"},
         {"state": "queued"}),
        ("failure", 200, {"id": "d1968551", "generation_type": "video", "state": "failed",
                          "failure_reason": "Prompt not allowed because advanced moderation failed",
                          "created_at": "2024-11-22T08:45:47.713Z", "model": "ray-2"},
         {"state": "failed", "error": "Prompt not allowed because advanced moderation failed"}),
        # [S] the openapi.yaml Error schema {detail}.
        ("not found", 404, {"detail": "Generation not found"}, {"raises": "NotFound"}),
    ],
    "minimax": [
        # [P] (success) MiniMax query answer as published by Baidu Qianfan's MiniMax page (cloud.baidu.com/doc/qianfan-api/s/tmwbl4b6e)
        # and platform.minimax.io openapi.json (base_resp {status_code, status_msg}, file_id, status).
        ("success", 200, {"task_id": "67bd3a0334815", "status": "Success", "file_id": "241342648594580",
                          "video_width": 1280, "video_height": 720,
                          "base_resp": {"status_code": 0, "status_msg": "success"}},
         {"state": "succeeded", "results": [], "details": {"file id": "241342648594580"}}),
        # [P] MiniMax's own example answer of GET /v1/query/video_generation (platform.minimax.io/docs/api-reference/
        # video-generation-query), as reproduced whole and marked "official" at docs.phanedge.cloud/minimaxi/video-query.md.
        ("success (MiniMax's example)", 200, {
            "task_id": "176843862716480", "status": "Success", "file_id": "176844028768320",
            "video_width": 1920, "video_height": 1080, "base_resp": {"status_code": 0, "status_msg": "success"}},
         {"state": "succeeded", "results": [], "provider_status": "Success", "error": None,
          "details": {"file id": "176844028768320"}}),
        ("running", 200, {"task_id": "67bd3a0334815", "status": "Processing",
                          "base_resp": {"status_code": 0, "status_msg": "success"}},
         {"state": "running"}),
        ("queueing", 200, {"task_id": "67bd3a0334815", "status": "Queueing",
                           "base_resp": {"status_code": 0, "status_msg": "success"}},
         {"state": "queued"}),
        # [S] 1027: "the generated video touches sensitive content" comes with status Fail.
        ("failure", 200, {"task_id": "67bd3a0334815", "status": "Fail",
                          "base_resp": {"status_code": 1027, "status_msg": "output video sensitive"}},
         {"state": "failed", "error": "output video sensitive"}),
        # [S] MiniMax answers errors in a 200 with a non-zero base_resp.status_code (2013: invalid params).
        ("not found", 200, {"task_id": "", "status": "",
                            "base_resp": {"status_code": 2013, "status_msg": "invalid params, task not found"}},
         {"raises": "ClientError"}),
        ("bad key", 200, {"base_resp": {"status_code": 1004, "status_msg": "login fail"}}, {"raises": "AuthError"}),
    ],
    "seedance": [
        # [P] the BytePlus "query a video generation task" answer as reproduced whole on a reseller's
        # reference page (docs.powertokens.ai/en/zmodelVideo/byteplus/seedance/seedance-tasks-query), which
        # also lists the status values: queued, running, cancelled, succeeded, failed, expired ("Task timed out").
        ("success (reproduced page)", 200, {
            "id": "cgt-2026****-****", "model": "doubao-seedance-2-0-260128", "status": "succeeded",
            "content": {"video_url": "https://ark-content-generation-cn-beijing.tos-cn-beijing.volces.com/xxx"},
            "usage": {"completion_tokens": 108900, "total_tokens": 108900},
            "created_at": 1779348818, "updated_at": 1779348874, "seed": 78674, "resolution": "720p",
            "ratio": "16:9", "duration": 5, "framespersecond": 24, "service_tier": "default",
            "execution_expires_after": 172800, "generate_audio": True, "draft": False, "priority": 0},
         {"state": "succeeded", "model": "doubao-seedance-2-0-260128",
          "results": ["https://ark-content-generation-cn-beijing.tos-cn-beijing.volces.com/xxx"],
          "created_at": 1779348818.0}),
        # [S] the same page: "expired" = the task timed out (execution_expires_after passed): it has ended.
        ("expired", 200, {"id": "cgt-1", "model": "doubao-seedance-2-0-260128", "status": "expired",
                          "created_at": 1779348818, "updated_at": 1779521618},
         {"state": "failed"}),
        # [S] ComfyUI nodes_bytedance.py TaskStatusResponse {id, model, status, error {code, message}, content {video_url}};
        # BytePlus ModelArk "Query a video generation task" example (docs.byteplus.com/en/docs/ModelArk/1521309).
        ("success", 200, {"id": "cgt-20250331175019-68d9t", "model": "seedance-1-0-pro-250528",
                          "status": "succeeded",
                          "content": {"video_url": "https://ark-content-generation-ap-southeast-1.tos.example/x.mp4"},
                          "usage": {"completion_tokens": 246840, "total_tokens": 246840},
                          "created_at": 1743414619, "updated_at": 1743414673},
         {"state": "succeeded", "model": "seedance-1-0-pro-250528",
          "results": ["https://ark-content-generation-ap-southeast-1.tos.example/x.mp4"], "created_at": 1743414619.0}),
        ("running", 200, {"id": "cgt-20250331175019-68d9t", "model": "seedance-1-0-pro-250528", "status": "running",
                          "created_at": 1743414619, "updated_at": 1743414630},
         {"state": "running"}),
        ("queued", 200, {"id": "cgt-1", "model": "seedance-1-0-lite-t2v-250428", "status": "queued"},
         {"state": "queued"}),
        ("failure", 200, {"id": "cgt-1", "model": "seedance-1-0-pro-250528", "status": "failed",
                          "error": {"code": "OutputVideoSensitiveContentDetected",
                                    "message": "The request failed because the output video may contain sensitive information."}},
         {"state": "failed",
          "error": "The request failed because the output video may contain sensitive information. (OutputVideoSensitiveContentDetected)"}),
        ("cancelled", 200, {"id": "cgt-1", "model": "seedance-1-0-pro-250528", "status": "cancelled"},
         {"state": "cancelled"}),
        # [S] BytePlus error body: {"error": {"code", "message", "param", "type"}} with 404 for an unknown task.
        ("not found", 404, {"error": {"code": "ResourceNotFound", "message": "The specified task is not found.",
                                      "param": "", "type": "NotFound"}},
         {"raises": "NotFound"}),
    ],
    "wan": [
        # [P] docs.qwencloud.com/api-reference/video-generation/wan-text-to-video/query-result (Alibaba's own docs).
        ("success", 200, {"request_id": "c1209113-8437-424f-a386-xxxxxx",
                          "output": {"task_id": "966cebcd-dedc-4962-af88-xxxxxx", "task_status": "SUCCEEDED",
                                     "video_url": "https://dashscope-result-sh.oss-accelerate.aliyuncs.com/xxx.mp4?Expires=xxx",
                                     "task_metrics": {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}},
                          "usage": {"video_count": 1, "video_duration": 10}},
         {"state": "succeeded",
          "results": ["https://dashscope-result-sh.oss-accelerate.aliyuncs.com/xxx.mp4?Expires=xxx"]}),
        # [S] the same page's status flow PENDING -> RUNNING; submit_time as s.apifox.cn/ef5ff055-4fd6-4acc-bf24-d05a51d4e537/339611922e0; body as ComfyUI nodes_wan.py VideoTaskStatusResponse.
        ("running", 200, {"request_id": "e5d70b02", "output": {"task_id": "966cebcd", "task_status": "RUNNING",
                                                              "submit_time": "2025-07-27 21:05:15.212"}},
         {"state": "running", "details": {"submitted": "2025-07-27 21:05:15.212", "request id": "e5d70b02"}}),
        ("pending", 200, {"request_id": "e5d70b02", "output": {"task_id": "966cebcd", "task_status": "PENDING"}},
         {"state": "queued"}),
        # [P] Alibaba's own DashScope page (help.aliyun.com/zh/model-studio/wan2-5-image-edit-api-reference, step 2
        # GET /api/v1/tasks/{task_id}, the same task query the video models use): its "task failed" and "task query
        # expired" (24 h) answers, whole, and the create answer (PENDING) of step 1.
        ("failure (Alibaba's page)", 200, {
            "request_id": "e5d70b02-ebd3-98ce-9fe8-759d7d7b107d",
            "output": {"task_id": "86ecf553-d340-4e21-af6e-xxxxxx", "task_status": "FAILED", "code": "InvalidParameter",
                       "message": "xxxxxx", "task_metrics": {"TOTAL": 4, "SUCCEEDED": 0, "FAILED": 4}}},
         {"state": "failed", "error": "xxxxxx", "results": []}),
        ("not found, query expired (Alibaba's page)", 200, {
            "request_id": "a4de7c32-7057-9f82-8581-xxxxxx",
            "output": {"task_id": "502a00b1-19d9-4839-a82f-xxxxxx", "task_status": "UNKNOWN"}},
         {"state": "not_found"}),
        ("pending (Alibaba's page)", 200, {
            "output": {"task_status": "PENDING", "task_id": "0385dc79-5ff8-4d82-bcb6-xxxxxx"},
            "request_id": "4909100c-7b5a-9f92-bfe5-xxxxxx"},
         {"state": "queued", "results": []}),
        # [S] DashScope task query failure: output.code and output.message (ComfyUI VideoTaskStatusOutputField).
        ("failure", 200, {"request_id": "daad9007", "output": {"task_id": "fe8aa114", "task_status": "FAILED",
                                                              "code": "InvalidParameter",
                                                              "message": "The size is not match the allowed size"}},
         {"state": "failed", "error": "The size is not match the allowed size"}),
        # [S] DashScope: UNKNOWN = the task does not exist or has expired (kept 24 h).
        ("not found", 200, {"request_id": "1a2b", "output": {"task_id": "f0b5", "task_status": "UNKNOWN"}},
         {"state": "not_found"}),
    ],
    "sora": [
        # [S] platform.openai.com/docs/api-reference/videos/object: the video job object; ComfyUI nodes_sora.py
        # Sora2GenerationResponse {id, error, status}.
        ("success", 200, {"id": "video_123", "object": "video", "model": "sora-2", "status": "completed",
                          "progress": 100, "created_at": 1712697600, "size": "1024x1808", "seconds": "8",
                          "quality": "standard"},
         {"state": "succeeded", "progress": 100.0, "model": "sora-2", "created_at": 1712697600.0,
          "details": {"seconds": "8", "size": "1024x1808"}}),
        ("running", 200, {"id": "video_123", "object": "video", "model": "sora-2", "status": "in_progress",
                          "progress": 33, "created_at": 1712697600, "size": "1280x720", "seconds": "4"},
         {"state": "running", "progress": 33.0}),
        # [P] the video job example of OpenAI's API reference ("Create video" response), as copied in
        # github:tegnike/sora-webui docs/sora_api.md.
        ("queued", 200, {"id": "video_123", "object": "video", "model": "sora-2", "status": "queued",
                         "progress": 0, "created_at": 1712697600, "size": "1024x1808", "seconds": "8",
                         "quality": "standard"},
         {"state": "queued", "progress": 0.0, "model": "sora-2", "created_at": 1712697600.0,
          "details": {"seconds": "8", "size": "1024x1808"}}),
        ("failure", 200, {"id": "video_123", "object": "video", "model": "sora-2", "status": "failed",
                          "progress": 0, "created_at": 1712697600,
                          "error": {"code": "moderation_blocked", "message": "Your request was blocked by our moderation system."}},
         {"state": "failed", "error": "Your request was blocked by our moderation system. (moderation_blocked)"}),
        # [S] OpenAI's error shape for an unknown id.
        ("not found", 404, {"error": {"message": "Video with id 'video_x' not found.", "type": "invalid_request_error",
                                      "param": None, "code": None}},
         {"raises": "NotFound"}),
    ],
    "tripo": [
        # [S] ComfyUI apis/tripo_api.py TripoTaskResponse {code, data: TripoTask {task_id, type, status, output
        # {model, base_model, pbr_model, rendered_image}, progress, create_time}}; platform.tripo3d.ai/docs/task.
        ("success", 200, {"code": 0, "data": {"task_id": "1ec04ced-4b87-44f6-a296-beee80777941",
                                              "type": "text_to_model", "status": "success", "progress": 100,
                                              "create_time": 1709048933,
                                              "input": {"prompt": "a small cat"},
                                              "output": {"pbr_model": "https://tripo-data.cdn/pbr.glb",
                                                         "rendered_image": "https://tripo-data.cdn/r.webp"}}},
         {"state": "succeeded", "progress": 100.0, "created_at": 1709048933.0,
          "results": ["https://tripo-data.cdn/pbr.glb", "https://tripo-data.cdn/r.webp"],
          "details": {"task type": "text_to_model"}}),
        ("running", 200, {"code": 0, "data": {"task_id": "1ec04ced", "type": "text_to_model", "status": "running",
                                              "progress": 42, "create_time": 1709048933, "running_left_time": 30}},
         {"state": "running", "progress": 42.0}),
        # [P] platform.tripo3d.ai/docs/task "Get a Specific Task" example answer, whole (as mirrored in
        # github:funmagic-ai/magi-3d-sdk@7a6effeb tripo/task.md): running at 99 with an empty output.
        ("running (Tripo's page)", 200, {
            "code": 0,
            "data": {"task_id": "ef731ad6-aeb0-4950-9a2e-2298359dfaf8", "type": "text_to_model", "status": "running",
                     "input": {"prompt": "a small cat"}, "output": {}, "progress": 99, "create_time": 1709048933}},
         {"state": "running", "progress": 99.0, "results": [], "created_at": 1709048933.0,
          "details": {"task type": "text_to_model"}}),
        # [S] the same page's status list: banned, expired, cancelled and unknown are "Finalized" ("no
        # further updates"); "unknown" is in READER_ONLY below.
        ("failure", 200, {"code": 0, "data": {"task_id": "1ec04ced", "type": "text_to_model", "status": "banned",
                                              "progress": 0, "create_time": 1709048933}},
         {"state": "failed", "error_starts": "banned: "}),
        # [P] docs.tripo3d.ai/get-started/errors-and-error-handling.html: the failed task Tripo's errors page
        # prints, whole ("During your task query process, some tasks may fail. An error code will also be
        # returned to make the reason clear"; 1001 is "Fatal error on server side" in its table).
        ("failure (Tripo's errors page)", 200, {
            "code": 0,
            "data": {"task_id": "916ef2cf-02e5-4bed-97f3-d8a8196f7dfc", "type": "text_to_model", "status": "failed",
                     "input": {"prompt": "A dachshund standing on a stool.", "model_version": "v2.5-20250123"},
                     "output": {}, "progress": 100, "create_time": 1768888519, "error_code": 1001,
                     "prompt": "a dog", "queuing_num": -1, "running_left_time": -1, "result": {}}},
         {"state": "failed", "provider_status": "failed", "results": [], "created_at": 1768888519.0,
          "details": {"task type": "text_to_model", "error code": "1001"}}),
        # [S] "expired", the body of the errors page above with the status word of the task page
        # (platform.tripo3d.ai/docs/task, mirrored in github:funmagic-ai/magi-3d-sdk@7a6effeb tripo/task.md):
        # "expired: The task has expired after a certain period. Please try again and report this along with
        # the task_id for support if it appeared again", listed under "Finalized".  ComfyUI counts it a failure
        # (github:comfyanonymous/ComfyUI@0ac35b91 comfy_api_nodes/nodes_tripo.py poll_task failed_statuses
        # [..., TripoTaskStatus.EXPIRED]; util/client.py poll_op_raw raises "Task failed: ...").  No page
        # publishes a whole expired answer.  A failed task, with an error that says so.
        ("expired", 200, {
            "code": 0,
            "data": {"task_id": "916ef2cf-02e5-4bed-97f3-d8a8196f7dfc", "type": "text_to_model", "status": "expired",
                     "input": {"prompt": "A dachshund standing on a stool.", "model_version": "v2.5-20250123"},
                     "output": {}, "progress": 0, "create_time": 1768888519, "queuing_num": -1,
                     "running_left_time": -1, "result": {}}},
         {"state": "failed", "provider_status": "expired", "results": [], "error_starts": "expired: "}),
        # [S] Tripo error body {code, message, suggestion} (docs.tripo3d.ai/get-started/errors-and-error-handling.html)
        # with the task page's published row for it: HTTP 404, code 2001, "Task not found.", "Please check if
        # you passed the correct task id." (2000 is the generation rate limit, a 429: the generation page's
        # table, and docs.tripo3d.ai/other/support-faq.html "Error code 2000 ... exceeded our concurrency limit").
        ("not found", 404, {"code": 2001, "message": "Task not found.",
                            "suggestion": "Please check if you passed the correct task id."},
         {"raises": "NotFound"}),
    ],
    "pixverse": [
        # [P] docs.platform.pixverse.ai/how-to-use-extend-1268531m0: the two "Get video generation status"
        # examples PixVerse's own page prints, whole (its placeholders "string" and 0 kept: a created time
        # that is no time is read as none).
        ("generating (PixVerse's page)", 200, {
            "ErrCode": 0, "ErrMsg": "string",
            "Resp": {"create_time": "string", "id": 0, "modify_time": "string", "negative_prompt": "string",
                     "outputHeight": 0, "outputWidth": 0, "prompt": "string", "resolution_ratio": 0, "seed": 0,
                     "size": 0, "status": 5, "style": "string", "url": "string"}},
         {"state": "running", "provider_status": "5", "created_at": None}),
        ("successful (PixVerse's page)", 200, {
            "ErrCode": 0, "ErrMsg": "string",
            "Resp": {"create_time": "string", "id": 0, "modify_time": "string", "negative_prompt": "string",
                     "outputHeight": 0, "outputWidth": 0, "prompt": "string", "resolution_ratio": 0, "seed": 0,
                     "size": 0, "status": 1, "style": "string", "url": "string"}},
         {"state": "succeeded", "provider_status": "1", "results": [], "created_at": None}),
        # [S] ComfyUI apis/pixverse_api.py PixverseGenerationStatusResponse {ErrCode, ErrMsg, Resp {id, status, url,
        # create_time, ...}} and PixverseStatus (1 successful, 5 generating, 6 deleted, 7 moderation, 8 failed).
        ("success", 200, {"ErrCode": 0, "ErrMsg": "Success",
                          "Resp": {"id": 321, "status": 1, "url": "https://media.pixverse.ai/x.mp4",
                                   "create_time": "2025-03-20T10:00:00Z", "outputWidth": 1280, "outputHeight": 720}},
         {"state": "succeeded", "provider_status": "1", "results": ["https://media.pixverse.ai/x.mp4"],
          "created_at": 1742464800.0}),
        ("running", 200, {"ErrCode": 0, "ErrMsg": "Success", "Resp": {"id": 321, "status": 5, "url": ""}},
         {"state": "running", "results": []}),
        ("moderation", 200, {"ErrCode": 0, "ErrMsg": "Success", "Resp": {"id": 321, "status": 7}},
         {"state": "failed"}),
        ("failure", 200, {"ErrCode": 0, "ErrMsg": "Success", "Resp": {"id": 321, "status": 8}},
         {"state": "failed"}),
        ("not found (deleted)", 200, {"ErrCode": 0, "ErrMsg": "Success", "Resp": {"id": 321, "status": 6}},
         {"state": "not_found"}),
        ("error in a 200 (illustrative code; non-zero ErrCode)", 200, {"ErrCode": 500044, "ErrMsg": "Video not found", "Resp": None},
         {"raises": "ClientError"}),
    ],
    "vidu": [
        # [P] Baidu Qianfan's Vidu page (cloud.baidu.com/doc/qianfan-api/s/Kmwbl4c5n), response example:
        # the same task object with the state under "status" (Vidu's own API and ComfyUI say "state"):
        # both are read.
        ("success, status spelled 'status' (Qianfan page)", 200, {
            "log_id": "as-bx***jgk", "id": "67d2accc8***8aae770", "status": "success", "err_code": "",
            "creations": [{"id": "", "url": "http://bj.***", "cover_url": "http://bj.bc***"}]},
         {"state": "succeeded"}),
        # [S] ComfyUI nodes_vidu.py TaskStatusResponse {state, err_code, creations [{id, url, cover_url}]};
        # platform.vidu.com "Get generation" example.
        ("success", 200, {"id": "your_task_id", "state": "success", "err_code": "",
                          "creations": [{"id": "creation_id", "url": "https://vidu.cdn/x.mp4",
                                         "cover_url": "https://vidu.cdn/x.jpg"}]},
         {"state": "succeeded", "results": ["https://vidu.cdn/x.mp4"]}),
        ("running", 200, {"id": "t", "state": "processing", "err_code": "", "creations": []},
         {"state": "running"}),
        ("queued", 200, {"id": "t", "state": "queueing", "err_code": "", "creations": []}, {"state": "queued"}),
        ("failure", 200, {"id": "t", "state": "failed", "err_code": "AuditSubmitIllegal", "creations": []},
         {"state": "failed", "error": "AuditSubmitIllegal"}),
        ("not found", 404, {"code": 404, "reason": "TaskNotFound", "message": "task not found"},
         {"raises": "NotFound"}),
    ],
    "stability": [
        # [S] platform.stability.ai/docs/api-reference#tag/Results: 202 {id, status: "in-progress"} while running;
        # ComfyUI stability_api.py StabilityResultsGetResponse {image, finish_reason, seed, id, name, errors}.
        ("running", 202, {"id": "a6dc6c6e20acda010fe14d71f180658f2896ed9b4ec25aa99a6ff06c796987c4",
                          "status": "in-progress"},
         {"state": "running"}),
        ("success", 200, {"image": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
                          "finish_reason": "SUCCESS", "seed": 343940597},
         {"state": "succeeded", "results": [], "details": {"seed": "343940597"}}),
        # [P] Stability's API reference for a results endpoint (v2alpha stable-image/upscale/result, as mirrored
        # whole at stabilityai.apidog.io/api-6070378): "either in-progress (i.e. status code 202) or it is complete
        # (i.e. status code 200)"; its 200 example is a bare {}.  The status code decides (status_by_http).
        ("success, bare {} (Stability's reference)", 200, {}, {"state": "succeeded", "results": []}),
        ("running, bare {} (by its 202)", 202, {}, {"state": "running"}),
        ("failure (content filtered)", 200, {"image": None, "finish_reason": "CONTENT_FILTERED", "seed": 1},
         {"state": "failed"}),
        # [S] results expire after 24 h: 404 {id, name: "not_found", errors: [...]}.
        ("not found", 404, {"id": "a6dc6c6e", "name": "not_found",
                            "errors": ["Generation ID a6dc6c6e not found"]},
         {"raises": "NotFound"}),
    ],
    "veo": [
        # [S] ComfyUI apis/__init__.py VeoGenVidPollResponse {done, error {code, message}, name, response {videos
        # [{gcsUri, mimeType}], raiMediaFilteredCount}}; Vertex AI long-running operation docs
        # (cloud.google.com/vertex-ai/generative-ai/docs/model-reference/veo-video-generation).
        # [P] Google's "Generate videos with Veo from text" page, REST tab (cloud.google.com/vertex-ai/generative-ai/
        # docs/video/generate-videos-from-text, now docs.cloud.google.com/gemini-enterprise-agent-platform/models/
        # video/generate-videos-from-text): the predictLongRunning answer, whole; an operation not yet done
        # answers the same object without "done" (google.longrunning.Operation).
        ("running (Google's page)", 200, {
            "name": "projects/PROJECT_ID/locations/us-central1/publishers/google/models/MODEL_ID/operations/a1b07c8e-7b5a-4aba-bb34-3e1ccb8afcc8"},
         {"state": "running", "results": []}),
        # [P] the same page, step 2 (fetchPredictOperation) "Response", whole.
        ("success (Google's page)", 200, {
            "name": "projects/PROJECT_ID/locations/us-central1/publishers/google/models/MODEL_ID/operations/OPERATION_ID",
            "done": True,
            "response": {
                "raiMediaFilteredCount": 0,
                "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                "videos": [{"gcsUri": "gs://BUCKET_NAME/TIMESTAMPED_FOLDER/sample_0.mp4", "mimeType": "video/mp4"}]}},
         {"state": "succeeded", "results": [], "error": None}),  # gs:// is no web link: not a result
        ("failure", 200, {"name": "projects/p/operations/a1b07c8e", "done": True,
                          "error": {"code": 3, "message": "The prompt could not be submitted."}},
         {"state": "failed", "error": "The prompt could not be submitted. (3)"}),
        ("filtered", 200, {"name": "projects/p/operations/a1b07c8e", "done": True,
                           "response": {"raiMediaFilteredCount": 1,
                                        "raiMediaFilteredReasons": ["Unable to show generated videos."]}},
         {"state": "failed", "error": "Unable to show generated videos."}),
        ("not found", 404, {"error": {"code": 404, "message": "Operation not found", "status": "NOT_FOUND"}},
         {"raises": "NotFound"}),
    ],
}


# Published variants a reader must take that the simulator need not say (tests/unit/test_sim_vendors.py
# holds the simulator to the words in CASES; tests/unit/test_catalogue.py reads both).  Same form as CASES.
READER_ONLY: dict[str, list[tuple[str, int, object, dict]]] = {
    "minimax": [
        # [S] "Preparing", a status word MiniMax's own query pages list (platform.minimax.io/docs/api-reference/
        # video-agent-query: Preparing, Processing, Success, Fail), before Processing.
        ("preparing", 200, {"task_id": "176843862716480", "status": "Preparing",
                            "base_resp": {"status_code": 0, "status_msg": "success"}},
         {"state": "queued"}),
    ],
    "tripo": [
        # [S] platform.tripo3d.ai/docs/task (as mirrored in github:funmagic-ai/magi-3d-sdk@7a6effeb tripo/task.md):
        # "unknown: The task's current status cannot be determined, potentially indicating a problem at the
        # system level", listed under "Finalized"; ComfyUI nodes_tripo.py counts it (with expired) among
        # failed_statuses.  The entry read it as not_found.
        ("failure, status unknown (finalized)", 200, {"code": 0, "data": {"task_id": "1ec04ced", "type": "text_to_model",
                                                                          "status": "unknown", "progress": 0}},
         {"state": "failed", "error_starts": "unknown: "}),
        # [S] the task page's 404 row (2001, in CASES) carried in a 200: Tripo's General page (mirrored in
        # github:funmagic-ai/magi-3d-sdk@7a6effeb tripo/introduction.md) says "For every request that encounters
        # an error, the code field will be non-zero", so the code alone says not found, whatever a proxy does
        # with the HTTP status.
        ("not found, code 2001 in a 200", 200, {"code": 2001, "message": "Task not found.",
                                                "suggestion": "Please check if you passed the correct task id."},
         {"raises": "NotFound"}),
        # A 404 reads as not found whatever its code: the code this project's simulator once sent (2000, Tripo's
        # generation rate limit) still reads as not found under a 404, while 2000 in a 200 is the rate limit.
        ("not found, 404 with code 2000", 404, {"code": 2000, "message": "Task not found", "suggestion": "Check the task id"},
         {"raises": "NotFound"}),
        # [S] the generation page's row: 429, 2000 "You have exceeded the limit of generation."
        ("rate limited, code 2000", 429, {"code": 2000, "message": "You have exceeded the limit of generation.",
                                          "suggestion": "Please retry later."},
         {"raises": "RateLimited"}),
        ("rate limited, code 2000 in a 200", 200, {"code": 2000, "message": "You have exceeded the limit of generation.",
                                                   "suggestion": "Please retry later."},
         {"raises": "RateLimited"}),
    ],
    "veo": [
        # [S] a Vertex operation with done false spelled out (google.longrunning.Operation.done: "If the value
        # is false, it means the operation is still in progress").
        ("running, done false", 200, {"name": "projects/p/operations/a1b07c8e", "done": False},
         {"state": "running"}),
    ],
}
