from pipeline.providers.sentences import SentenceSplitter, iter_sentences


def test_sentence_is_released_as_soon_as_the_next_token_starts():
    splitter = SentenceSplitter()
    assert splitter.push("Hello") == []
    assert splitter.push(" there.") == []  # could still be "there.5" or "there..."
    assert splitter.push(" How") == ["Hello there."]
    assert splitter.push(" are you?") == []
    assert splitter.flush() == ["How are you?"]


def test_abbreviations_decimals_and_initials_do_not_end_a_sentence():
    text = "Dr. Smith charges 3.5 dollars, e.g. on Mondays. J. R. Tolkien called! Really?"
    deltas = [text[i : i + 3] for i in range(0, len(text), 3)]
    assert list(iter_sentences(deltas)) == [
        "Dr. Smith charges 3.5 dollars, e.g. on Mondays.", "J. R. Tolkien called!", "Really?"]


def test_newlines_and_closing_quotes():
    assert list(iter_sentences(['He said "stop." ', "Then\n", "left"])) == ['He said "stop."', "Then", "left"]


def test_run_on_text_is_cut_at_a_comma_or_space_when_long():
    out = list(iter_sentences(["alpha beta, gamma delta epsilon zeta eta theta iota kappa"], max_chars=30))
    assert out[0] == "alpha beta,"
    assert all(len(s) <= 30 for s in out)
    assert " ".join(out).replace(",", "").split() == "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()


def test_empty_and_whitespace_input_yields_nothing():
    assert list(iter_sentences(["", "  ", "\n"])) == []
