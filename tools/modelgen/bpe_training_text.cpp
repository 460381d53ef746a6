// The built-in sample that generated vocabularies learn their merges from: everyday English,
// simplified Chinese, C++ and Python, numbers and punctuation. Written for tandem.
#include "tools/modelgen/byte_level_bpe_vocab.h"

namespace tandem::modelgen {

const std::string& bpe_training_text() {
  static const std::string text = R"SAMPLE(The quick brown fox jumps over the lazy dog, and then the dog wakes up and chases the fox around the garden.
In the morning the market opens at nine. People are buying bread, apples, tea and coffee; the children are playing near the fountain.
A mixture of experts model routes every token to a few experts out of many. The router computes a score for each expert, keeps the best ones, and adds their outputs together with the shared expert.
Attention compresses keys and values into a small latent vector, which makes the cache much smaller than in a standard transformer. This is why long contexts become practical on a single server.
Questions and answers: What is the capital of France? The capital of France is Paris. How many days are there in a week? There are seven days in a week.
Please write a short story about a robot who learns to paint. The robot painted the sea, the sky and the mountains, and everyone in the town came to see the pictures.
She said: "I think that we should start again tomorrow, because everything is ready now and the weather will be better."
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 256 1024 2048 65536 3.14159 2.71828 1e-6 -7 +12 50% $19.99 2024-05-01 12:30.
今天天气很好，我们一起去公园散步吧。春天来了，花都开了，小鸟在树上唱歌。
人工智能正在改变我们的生活和工作方式。大型语言模型可以回答问题、写文章、翻译语言，还可以帮助程序员编写代码。
我喜欢读书，也喜欢听音乐。周末的时候，我常常和朋友一起喝茶聊天。
中国的首都是北京。长江是中国最长的河流。这个问题的答案是什么？请你详细地解释一下。
专家混合模型把每个词元分配给少数几个专家，这样计算量就小了很多。
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  std::vector<int> values;
  for (int i = 0; i < argc; ++i) {
    values.push_back(i * 2 + 1);
  }
  int sum = 0;
  for (const int v : values) sum += v;
  std::printf("sum = %d\n", sum);
  return sum > 100 ? 1 : 0;
}

template <typename T>
T clamp(T value, T low, T high) {
  if (value < low) return low;
  if (value > high) return high;
  return value;
}

def fibonacci(n):
    """Return the first n Fibonacci numbers."""
    result = []
    a, b = 0, 1
    for _ in range(n):
        result.append(a)
        a, b = b, a + b
    return result


class Tokenizer:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.merges = merges

    def encode(self, text):
        return [self.vocab[piece] for piece in text.split() if piece in self.vocab]


if __name__ == "__main__":
    print(fibonacci(10))
    print({"key": "value", "list": [1, 2, 3], "nested": {"a": None, "b": True}})
The end of the sample. Thank you for reading, and have a nice day!
)SAMPLE";
  return text;
}

}  // namespace tandem::modelgen
