import json

from media_plane.providers.offline_engine import (
    ANYTHING_ELSE,
    BOOKING_ASK,
    CANT_BOOK,
    NOT_KNOWN,
    TRANSFER_SAY,
    best_sentences,
    decide,
)

ALL = ("search_knowledge", "book_appointment", "transfer_to_human", "end_call")
PASSAGES = [
    {
        "section": "Opening hours",
        "text": "From Monday to Friday we are open from 8 am until 6 pm. "
        "On Saturday we are open from 9 am until 1 pm. We are closed on Sunday.",
    },
    {"section": "Prices", "text": "A standard cleaning costs $95. Whitening costs $250."},
]


def user(text):
    return {"role": "user", "content": text}


def tool_result(name, result):
    return [
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": name}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": json.dumps(result)},
    ]


def test_questions_go_to_the_knowledge_search():
    reply = decide([user("what time do you open on saturday")], ALL)
    assert reply.calls == [("search_knowledge", {"query": "what time do you open on saturday"})]
    assert reply.text == ""


def test_answers_are_sentences_of_the_retrieved_passage_verbatim():
    result = {"query": "what time do you open on saturday", "passages": PASSAGES}
    reply = decide([user("x"), *tool_result("search_knowledge", result)], ALL)
    assert reply.text == "On Saturday we are open from 9 am until 1 pm."


def test_price_questions_prefer_the_sentence_with_a_price():
    assert best_sentences("how much is a cleaning", PASSAGES) == ["A standard cleaning costs $95."]


def test_says_plainly_when_nothing_relevant_came_back():
    result = {"query": "do you sell bicycles", "passages": PASSAGES}
    reply = decide([user("x"), *tool_result("search_knowledge", result)], ALL)
    assert reply.text == NOT_KNOWN
    empty = {"query": "what time do you open", "passages": []}
    assert decide([user("x"), *tool_result("search_knowledge", empty)], ALL).text == NOT_KNOWN


def test_goodbye_says_goodbye_then_ends_the_call():
    reply = decide([user("thank you goodbye")], ALL)
    assert "Goodbye" in reply.text
    assert reply.calls == [("end_call", {})]


def test_asking_for_a_person_transfers():
    reply = decide([user("can i talk to a real person please")], ALL)
    assert reply.text == TRANSFER_SAY
    assert reply.calls[0][0] == "transfer_to_human"


def test_booking_asks_for_a_time_then_books_it():
    first = decide([user("i would like to book an appointment")], ALL)
    assert first.text == BOOKING_ASK and not first.calls
    history = [
        user("book"),
        {"role": "assistant", "content": BOOKING_ASK},
        user("tomorrow at 10 am"),
    ]
    assert decide(history, ALL).calls == [("book_appointment", {"when": "tomorrow at 10 am"})]


def test_booking_with_a_time_books_at_once_and_confirms():
    reply = decide([user("book an appointment for friday afternoon")], ALL)
    assert reply.calls == [("book_appointment", {"when": "friday afternoon"})]
    done = decide(
        [user("x"), *tool_result("book_appointment", {"booking_id": "b1", "when": "friday"})], ALL
    )
    assert "booked you in for friday" in done.text


def test_only_enabled_tools_are_used():
    assert decide([user("book an appointment tomorrow")], ("search_knowledge",)).text == CANT_BOOK
    assert decide([user("what are your prices")], ("end_call",)).text == NOT_KNOWN
    # No end_call: "goodbye" is just a question the engine cannot answer from documents.
    assert decide([user("goodbye")], ("search_knowledge",)).calls[0][0] == "search_knowledge"


def test_transfer_without_a_number_says_nobody_is_available():
    reply = decide([user("x"), *tool_result("transfer_to_human", {"status": "unavailable"})], ALL)
    assert "nobody is available" in reply.text


def test_nothing_to_say_to_an_empty_turn():
    assert decide([user("   ")], ALL).text == ""
    assert decide([], ALL).calls == []


def test_only_thanks_after_anything_else_ends_the_call():
    asked = [user("book"), {"role": "assistant", "content": "All set. " + ANYTHING_ELSE}]
    for answer in ["thank you but i", "no thanks", "okay great thank you"]:
        assert decide([*asked, user(answer)], ALL).calls == [("end_call", {})], answer
    # A real request after "anything else?" is answered, not hung up on.
    follow_up = decide([*asked, user("no wait how much is a cleaning")], ALL)
    assert follow_up.calls[0][0] == "search_knowledge"
    # And thanks without that question is not a goodbye.
    assert decide([user("thank you")], ALL).calls[0][0] == "search_knowledge"


def test_a_hindi_question_is_answered_with_the_hindi_documents_sentences():
    passages = [
        {
            "section": "खुलने का समय",
            "text": "दुकान सुबह नौ बजे खुलती है। पार्किंग दुकान के पीछे मुफ़्त है।",
        }
    ]
    assert decide([user("दुकान कितने बजे खुलती है")], ALL).calls == [
        ("search_knowledge", {"query": "दुकान कितने बजे खुलती है"})
    ]
    result = {"query": "दुकान कितने बजे खुलती है", "passages": passages}
    reply = decide([user("x"), *tool_result("search_knowledge", result)], ALL)
    assert reply.text == "दुकान सुबह नौ बजे खुलती है।"
