"""Tools into prompts: the plain template's text, and the chat template with tools= where it renders them."""

from tool_template import with_tool_template

from grape.tools.calls import ToolCall
from grape.tools.parse import parse_calls
from grape.tools.render import (
    call_text,
    chat_call_text,
    chat_prompt_text,
    plain_messages,
    renders_tools,
    tool_signature,
)
from grape.tools.tool_docs import Tool

WEATHER = Tool("get_weather", "Get the current weather in a city.", {
    "unit": {"type": "string", "description": "The unit.", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
    "city": {"type": "string", "description": "The city's name."}}, ("city",))  # fmt: skip


def test_a_tool_as_a_python_signature():
    assert tool_signature(WEATHER) == (
        "def get_weather(city: string, unit: string = None):\n"
        '    """Get the current weather in a city.\n\n'
        "    Args:\n"
        "        city (string): The city's name.\n"
        "        unit (string): The unit. One of: celsius, fahrenheit. Default: celsius.\n"
        '    """'
    )


def test_calls_as_python():
    calls = [ToolCall("get_weather", {"city": "Paris", "days": [1, 2]}), ToolCall("math.pi", {})]
    assert call_text(calls) == "get_weather(city='Paris', days=[1, 2])\nmath.pi()"
    assert parse_calls(call_text(calls)).calls == calls


def test_a_conversation_in_the_plain_template():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "content": {"temperature": 21}},
    ]  # fmt: skip
    system, user, assistant, tool = plain_messages(messages, [WEATHER])
    assert system["role"] == "system" and system["content"].startswith("You can call these functions:\n\ndef get_w")
    assert system["content"].endswith("answer in plain text without a call.\n\nBe brief.")
    assert user == messages[1]
    assert assistant == {"role": "assistant", "content": "get_weather(city='Paris')"}
    assert tool == {"role": "tool", "content": '{"temperature": 21}'}


def test_which_templates_render_tools(smollm2_tokenizer, gemma_tokenizer):
    assert not renders_tools(smollm2_tokenizer)  # its template ignores tools=
    assert not renders_tools(gemma_tokenizer)  # a base model without a chat template
    assert renders_tools(with_tool_template(smollm2_tokenizer))


def test_a_template_that_renders_tools(smollm2_tokenizer):
    tokenizer = with_tool_template(smollm2_tokenizer)
    prompt = chat_prompt_text(tokenizer, [{"role": "user", "content": "Weather in Paris?"}], [WEATHER])
    assert prompt.startswith("<|im_start|>system\nYou may call these tools:\n<tools>\n{")
    assert '"name": "get_weather"' in prompt and prompt.endswith("<|im_start|>assistant\n")
    calls = [ToolCall("get_weather", {"city": "Paris"})]
    text = chat_call_text(tokenizer, calls, "<|im_end|>")
    assert text == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert parse_calls(text).calls == calls
    assert chat_call_text(smollm2_tokenizer, calls, "<|im_end|>") == "get_weather(city='Paris')"  # no tool calls
