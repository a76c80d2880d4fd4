"""A chat template that renders tools and tool calls (Hermes / Qwen 2.5 style), for tests: neither embedded
model's template does (SmolLM2's ignores tools=, Gemma 3 270M base has none)."""

import copy

# transformers compiles templates with trim_blocks: a newline right after a tag is written as {{ "\n" }}
TOOL_TEMPLATE = (
    '{% if tools %}<|im_start|>system\nYou may call these tools:\n<tools>{% for tool in tools %}{{ "\n" }}'
    "{{ tool | tojson }}{% endfor %}\n</tools><|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message.role }}\n"
    '{% if message.tool_calls %}{% for call in message.tool_calls %}{% if not loop.first %}{{ "\n" }}{% endif %}'
    '<tool_call>\n{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}'
    "\n</tool_call>{% endfor %}{% else %}{{ message.content }}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def with_tool_template(tokenizer):
    """A copy of ``tokenizer`` whose chat template renders tools."""
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.chat_template = TOOL_TEMPLATE
    return tokenizer
