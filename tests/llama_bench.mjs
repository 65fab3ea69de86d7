// llama.cpp (through node-llama-cpp, CPU) generating beside `vkft bench generate`: B sequences
// of one prompt in one context (node-llama-cpp evaluates the sequences of a context together,
// one batch per step), greedy, exactly N new tokens each (end of generation ignored).
// usage: node tests/llama_bench.mjs MODEL.gguf PROMPT N B [THREADS]
//   -> {"batch": B, "new_tokens": N, "seconds": S, "tokens_per_s": T}
// NODE_LLAMA_CPP names the node_modules folder holding node-llama-cpp (scripts/setup.sh).
import {join} from "node:path";
import {pathToFileURL} from "node:url";

const {getLlama} = await import(
  pathToFileURL(join(process.env.NODE_LLAMA_CPP, "node-llama-cpp", "dist", "index.js")).href);

const [modelPath, prompt, count, batch, threadArg] = process.argv.slice(2);
const N = Number(count), B = Number(batch), threads = Number(threadArg ?? 0);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: threads});
const model = await llama.loadModel({modelPath});
const tokens = [model.tokens.bos, ...model.tokenize(prompt)];
const context = await model.createContext({
  sequences: B,
  contextSize: B * (tokens.length + N + 8),
  batchSize: Math.max(512, B * tokens.length),
  threads,
});

async function generate(sequence) {
  let n = 0;
  for await (const id of sequence.evaluate(tokens, {temperature: 0})) {
    void id;
    if (++n >= N) break;
  }
  return n;
}

const sequences = Array.from({length: B}, () => context.getSequence());
const t0 = performance.now();
const done = await Promise.all(sequences.map(generate));
const seconds = (performance.now() - t0) / 1000;
const total = done.reduce((a, b) => a + b, 0);
console.log(JSON.stringify({batch: B, new_tokens: N, generated: total, seconds,
                            tokens_per_s: total / seconds}));
await context.dispose();
await model.dispose();
await llama.dispose();
