"""What the platform itself says in a call (not the agent's LLM), in the agent's language:
by its base language (``hi`` for ``hi-IN``), English where there is no translation."""

ONE_MOMENT = {"en": "One moment, please.", "hi": "एक पल रुकिए।"}
TOOL_FAILED = {
    "en": "I'm sorry, I couldn't get that done just now.",
    "hi": "माफ़ कीजिए, अभी यह नहीं हो पाया।",
}
SAY_AGAIN = {
    "en": "Sorry, I didn't catch that. Could you say it again?",
    "hi": "माफ़ कीजिए, मैं सुन नहीं पाया। क्या आप दोबारा कह सकते हैं?",
}

TIME_UP = {
    "en": "I'm sorry, this call has reached its time limit. Thank you for calling. Goodbye.",
    "hi": "माफ़ कीजिए, इस कॉल का समय पूरा हो गया है। कॉल करने के लिए धन्यवाद। नमस्ते।",
}


def in_language(phrase: dict[str, str], language: str) -> str:
    return phrase.get(language.split("-")[0], phrase["en"])
