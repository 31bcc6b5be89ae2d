"""Facts and bodies published by Freepik (Magnific) and its own MCP server, as
Python literals; each value names its source."""

# docs.freepik.com/ratelimits, "Requests per day (RPD) per API key", premium column.
DAILY_LIMITS = {"image-upscaler": 1250, "style-transfer": 1250, "image-relight": 1250, "mystic": 6000}
# the service names above as /v1/ai/{kind} paths (style-transfer is /v1/ai/image-style-transfer)
SERVICE_KIND = {"image-upscaler": "image-upscaler", "style-transfer": "image-style-transfer",
                "image-relight": "image-relight", "mystic": "mystic"}

# Create path -> poll path where they differ:
CREATE_TO_POLL = {
    # freepik-company/freepik-mcp src/infrastructure/ai_polling_service.py:
    #   generative_endpoint="/v1/ai/image-to-video/kling-std", polling_endpoint="/v1/ai/image-to-video/kling"
    "image-to-video/kling-std": "image-to-video/kling",
    # docs.magnific.com llms-full index (providers.md §4): create kling-v2-6-pro, poll kling-v2-6/{task-id}
    "image-to-video/kling-v2-6-pro": "image-to-video/kling-v2-6",
    # docs.magnific.com llms-full index: skin-enhancer POST /creative, /faithful, /flexible;
    # GET skin-enhancer/{task-id}
    "skin-enhancer/creative": "skin-enhancer",
    "skin-enhancer/faithful": "skin-enhancer",
    "skin-enhancer/flexible": "skin-enhancer",
}

# docs.magnific.com llms-full index (providers.md §4): families with the
# POST / GET-list / GET-{task-id} pattern under /v1/ai (a sample of the named ones).
DOCUMENTED_KINDS = [
    "image-relight", "image-style-transfer", "image-upscaler", "image-upscaler-precision",
    "image-upscaler-precision-v2", "image-expand/flux-pro", "ideogram-image-edit", "image-change-camera",
    "skin-enhancer", "mystic", "text-to-image/hyperflux", "text-to-image/flux-dev", "text-to-image/imagen3",
    "text-to-image/seedream-v4-5", "video-upscaler", "video-upscaler-precision", "audio-isolation",
    "sound-effects", "music-generation", "voiceover/elevenlabs-turbo-v2-5",
    # families documented as "image-to-video/…", "text-to-video/…", "video/…", "lip-sync/…"
    "image-to-video/veo-3-1", "text-to-video/wan-2-5-t2v-1080p", "video/seedance-2-pro", "lip-sync/latent-sync",
]

# freepik-company/freepik-mcp ai_polling_service.py: terminal = COMPLETED, FAILED, CANCELLED;
# a task-detail body as the seed (seeds/freepik-hyperflux-list-tasks.md) documents it.
TASK_COMPLETED = {"data": {"generated": ["https://ai-statics.freepik.com/completed_task_image.jpg"],
                           "task_id": "046b6c7f-0b8a-43b9-b35d-6489e6daee91", "status": "COMPLETED"}}
