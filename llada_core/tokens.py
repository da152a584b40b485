"""LLaDA's special tokens and chat template, in the official order and spelling."""

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MASK = "<|mdm_mask|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
# LLaDA-MoE (the Ling family): roles in <role>...</role>, a turn ends with <|role_end|>.
ROLE_OPEN, ROLE_CLOSE, ROLE_END = "<role>", "</role>", "<|role_end|>"

# The Instruct tokenizer's added tokens, in id order after the byte-level BPE vocabulary.
SPECIAL_TOKENS: list[str] = (
    [BOS, EOS, "[CLS]", "[gMASK]"]
    + [f"<|reserved_token_{i}|>" for i in range(252)]
    + [MASK]
    + [f"<|reserved_token_{i}|>" for i in range(253, 256)]
    + ["<role>", "</role>", "<|arithmetic_start|>", "<|arithmetic_end|>",
       "<|number_start|>", "<|number_end|>"]
    + [START_HEADER, END_HEADER, EOT]
)

# BOS before the first message only; every message is header + trimmed content + <|eot_id|>;
# the assistant header is always appended after the loop.
CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}"
    "{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}"
    "{% endfor %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
)
