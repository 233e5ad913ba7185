import pytest

from tfl.errors import TflError
from tfl.tokenizers import (
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    WordPieceTokenizer,
    WordTokenizer,
    build_tokenizer,
    load_tokenizer,
    tokenizer_stats,
)
from tfl.tokenizers.base import UNK_ID, UNK_TEXT

UNICODE_SAMPLES = [
    "plain ASCII, with punctuation!\n",
    "naïve café, Ünïcödé — “quotes” ‘and’ dashes…",
    "emoji 🧪🚀 and flags 🇫🇷, ZWJ 👩‍👩‍👧",
    "combining e\u0301 vs é, CRLF line\r\nend, tab\tand  double  space ",
    "中文，日本語のテキスト、한국어",
    "",
]


@pytest.mark.parametrize("text", UNICODE_SAMPLES)
def test_char_round_trip_is_exact(text):
    tok = CharTokenizer.train("".join(UNICODE_SAMPLES))
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("text", UNICODE_SAMPLES)
def test_byte_round_trip_is_exact_for_any_text(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert len(ids) == len(text.encode("utf-8"))
    assert all(3 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


def test_special_ids_are_shared_by_every_tokenizer():
    for tok in (CharTokenizer.train("ab"), ByteTokenizer(), WordTokenizer.train("a b"),
                WordPieceTokenizer.train("a b c", vocab_size=10)):
        assert tok.special_tokens == {"pad": 0, "unk": 1, "bos": 2}
        assert tok.decode([0, 2]) == ""
        assert [tok.id_to_token(i) for i in range(3)] == ["<pad>", "<unk>", "<bos>"]


def test_char_unknowns_replace_or_fail_by_name():
    tok = CharTokenizer.train("abc")
    assert tok.encode("abz") == [3, 4, UNK_ID]
    assert tok.decode(tok.encode("abz")) == "ab" + UNK_TEXT
    with pytest.raises(TflError, match="'z'"):
        tok.encode("abz", errors="strict")


def test_char_vocab_size_keeps_the_most_frequent():
    tok = CharTokenizer.train("aaaabbbc", vocab_size=5)
    assert tok.chars == ["a", "b"]


def test_byte_decode_survives_invalid_sequences():
    tok = ByteTokenizer()
    half_euro = tok.encode("€")[:2]
    assert tok.decode(half_euro + tok.encode("x")) == "\ufffdx"


def test_word_tokenizer_normalisation_is_as_documented():
    tok = WordTokenizer.train("Hello , world!\nDon't  (panic)   now.\n")
    assert tok.decode(tok.encode("Hello ,  world!\nDon't (panic) now.\n")) == (
        "Hello, world!\nDon't (panic) now.\n"
    )
    canonical = "To be, or not to be: that is the question.\nWhether 'tis nobler?"
    tok = WordTokenizer.train(canonical)
    assert tok.decode(tok.encode(canonical)) == tok.normalize(canonical)
    assert tok.encode("To be, or") == tok.encode("To  be ,or")


def test_word_vocab_is_frequency_ranked_and_cut():
    tok = WordTokenizer.train("b a b c b a", vocab_size=5)
    assert tok.words == ["b", "a"]
    assert tok.encode("c") == [UNK_ID]
    with pytest.raises(TflError, match="'c'"):
        tok.encode("a c", errors="strict")


def test_wordpiece_learns_subwords_and_keeps_line_breaks():
    text = "the theory of the thing,\nthe theme of the day\nthe end\n" * 20
    tok = WordPieceTokenizer.train(text, vocab_size=60)
    assert tok.vocabulary[:4] == ["[PAD]", "[UNK]", "[BOS]", "[NL]"]
    assert any(piece.startswith("##") for piece in tok.vocabulary)
    sample = "the thing\nthe day, the end"
    assert tok.decode(tok.encode(sample)) == "the thing\nthe day , the end"


@pytest.mark.parametrize("kind", ["char", "byte", "word", "wordpiece", "bpe"])
def test_save_and_load_give_the_same_tokenizer(kind, tmp_path):
    text = "It was the best of times,\nit was the worst of times.\n" * 10
    vocab_size = {"byte": None, "bpe": 300}.get(kind, 40)
    tok = build_tokenizer(kind, text, vocab_size=vocab_size)
    tok.save(tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert type(loaded) is type(tok)
    assert loaded.vocab_size == tok.vocab_size
    assert loaded.encode(text) == tok.encode(text)


def test_corrupt_or_missing_tokenizer_files(tmp_path):
    with pytest.raises(TflError, match="missing"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TflError, match="corrupt"):
        load_tokenizer(tmp_path)


def test_bad_names_and_vocabulary_sizes():
    with pytest.raises(TflError, match="did you mean 'wordpiece'"):
        build_tokenizer("wordpeice", "text")
    for kind in ("char", "word", "wordpiece"):
        with pytest.raises(TflError, match="too small"):
            build_tokenizer(kind, "some text", vocab_size=3)
    with pytest.raises(TflError, match="fixed vocabulary"):
        build_tokenizer("byte", vocab_size=100)


def test_stats_count_tokens_per_char_and_unknowns():
    tok = CharTokenizer.train("abc")
    stats = tokenizer_stats(tok, "abcabcxy")
    assert stats.tokens == 8 and stats.characters == 8
    assert stats.tokens_per_char == 1.0
    assert stats.unk_rate == pytest.approx(2 / 8)
    word_stats = tokenizer_stats(WordTokenizer.train("one two three"), "one two four")
    assert word_stats.tokens_per_char == pytest.approx(3 / 12)
    assert word_stats.unk_rate == pytest.approx(1 / 3)


PTB_LIKE = ("the <unk> company 's shares fell N % to $ N N in the <unk> <unk> market .\n"
            "mr. <unk> said the firm is n't for sale .\n") * 20


def test_word_tokenizer_keeps_a_pretokenized_corpus_own_tokens():
    tok = build_tokenizer("word", PTB_LIKE)
    assert tok.split == "whitespace"
    ids = tok.encode("the <unk> company 's shares is n't for sale .")
    assert UNK_ID not in ids
    assert tok.decode(ids) == "the <unk> company 's shares is n't for sale ."
    # Saved and loaded, it splits the same way.
    again = WordTokenizer.from_config(tok.get_config())
    assert again.encode("mr. <unk> said") == tok.encode("mr. <unk> said")


def test_word_tokenizer_splits_ordinary_prose_into_words_and_punctuation():
    tok = build_tokenizer("word", "He said, 'no'. She said: yes!\n" * 20)
    assert tok.split == "words"
    assert tok.decode(tok.encode("She said, no!")) == "She said, no!"


def test_a_wordpiece_vocabulary_too_small_for_the_corpus_is_refused_with_the_minimum():
    with pytest.raises(TflError, match=r"leaves \d+% of the training text unknown; use "
                                       r"--vocab-size \d+ or more"):
        build_tokenizer("wordpiece", "the theory of the thing\nthe end\n" * 20, vocab_size=5)


def test_byte_order_mark_and_windows_line_endings_never_reach_the_vocabulary(text_file):
    from tfl.data import load_corpus

    path = text_file(("\ufeff" + "line one\r\nline two\r\n" * 10).encode("utf-8"))
    corpus = load_corpus(path)
    tok = build_tokenizer("char", corpus.train)
    assert "\r" not in corpus.text and "\ufeff" not in corpus.text
    assert tok.decode(tok.encode("line two\n")) == "line two\n"


@pytest.mark.parametrize("text", UNICODE_SAMPLES)
def test_bpe_round_trip_is_exact_for_any_text(text):
    tok = build_tokenizer("bpe", "\n".join(UNICODE_SAMPLES) * 3, vocab_size=300)
    assert tok.decode(tok.encode(text)) == text
    assert UNK_ID not in tok.encode(text)


def test_bpe_merges_the_most_frequent_pair_first():
    # Counted by hand: in "aab aab aab ab", inside the chunks 'aab', ' aab' (twice), ' ab':
    # (a, a) 3, (a, b) 4, (' ', a) 3. So the first merge is (a, b); then 'a'+'ab' (3 times).
    from tfl.tokenizers.bpe import learn_merges

    merges = learn_merges("aab aab aab ab", 2)
    assert merges == [(ord("a"), ord("b")), (ord("a"), 256)]
    tok = BPETokenizer(merges)
    assert [tok.id_to_token(i) for i in tok.encode("aab ab")] == ["aab", " ", "ab"]


def test_bpe_on_chinese_joins_bytes_into_characters_first():
    text = "春眠不覺曉，處處聞啼鳥。\n夜來風雨聲，花落知多少。\n" * 30
    tok = build_tokenizer("bpe", text, vocab_size=400)
    pieces = [tok.id_to_token(i) for i in tok.encode("春眠不覺曉")]
    assert "".join(pieces) == "春眠不覺曉" and len(pieces) < 5  # merged beyond characters
