"""Bodies published by Upscayl, as Python literals, each with its source."""

# docs.upscayl.org/get-task-status (seeds/upscayl-get-task-status.md): the 200
# schema with its own examples -- FileData has `path` ("The path where the file is
# stored") and NO link field; createdAt/expiresAt integers (example 1640995200).
FILE_DATA = {"fileName": "1k2jj2b3c-cnb1234ij.jpg", "fileType": "image/jpeg", "fileSize": 123456,
             "originalFileName": "image.jpg", "path": "users/1412v4124v/1k2jj2b3c-cnb1234ij.jpg",
             "createdAt": 1640995200, "expiresAt": 1640995200, "dimensions": {"width": 4096, "height": 4096}}
DOCS_PROCESSED = {"status": "success",
                  "data": {"status": "PROCESSED", "progress": "100", "files": [FILE_DATA], "deductedCredits": 10,
                           "creditsDeducted": True, "model": "upscayl-standard-4x", "scale": "4",
                           "saveImageAs": "png", "compression": 80, "batchMode": False}}
# The same, before the charge: the endpoint "handles credit deduction if the task
# is processed and credits have not been deducted yet" (same page).
DOCS_NOT_YET_CHARGED = {"status": "success",
                        "data": {**DOCS_PROCESSED["data"], "creditsDeducted": False}}

# upscayl/upscayl docs/openapi.yaml, /get-task-status 200 example (TaskStatus):
OPENAPI_PROCESSING = {"status": "success",
                      "data": {"batchMode": False, "enhanceFace": True, "model": "digital-art-4x",
                               "progress": "75", "scale": "4", "status": "processing", "files": []}}
# openapi.yaml ProcessedFile: path plus optional downloadLink (format uri) and expiresAt (int64, ms).
PROCESSED_FILE = {"fileName": "a.png", "fileType": "image/png", "path": "users/u1/a.png",
                  "createdAt": 1763920000000, "expiresAt": 1764006400000, "originalFileName": "a.png",
                  "fileSize": 2048, "downloadLink": "https://cdn.upscayl.org/users/u1/a.png",
                  "thumbnailLink": "https://cdn.upscayl.org/users/u1/a_thumb.png", "finalFileSize": 8192,
                  "processedFileName": "a_upscayl_4x.png", "dimensions": {"width": 2048, "height": 2048}}

# openapi.yaml ProcessingTask (the rows of /get-upscayl-history): every property.
# None of them is a task id, so a history row cannot be matched to a tracked task.
PROCESSING_TASK_PROPERTIES = ("batchMode", "enhanceFace", "error", "files", "model", "progress", "scale",
                              "status", "saveImageAs", "creditsDeducted")
