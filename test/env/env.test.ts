// The built-in environments (maze transitions and observations, calculator tool calls), tool parsing and
// JSON schema, turn templates, and the env section of a train config.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { z } from "zod";
import {
  CalculatorEnv,
  calcTool,
  calculatorFactory,
  cellObservation,
  createEnv,
  defineTool,
  describeTools,
  distancesTo,
  EpisodeRoller,
  MazeEnv,
  type MazeTask,
  mazeFactory,
  optimalMoves,
  parseToolCall,
  scriptedEpisode,
  TurnTemplate,
  toolJsonSchema,
} from "../../src/env/index.js";
import { ConfigError } from "../../src/errors.js";
import { Rng } from "../../src/task/rng.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { parseTrainConfig } from "../../src/train/config.js";

// . . # .
// . # . .
// . . . G       start (0,0), goal (3,2)
const MAZE: MazeTask = { width: 4, height: 3, walls: "..#..#......", start: [0, 0], goal: [3, 2] };

describe("maze", () => {
  test("observations give the goal offset and the open moves; the start observation is a cell observation", () => {
    const env = new MazeEnv();
    assert.equal(env.reset(0, MAZE), "R3D2:DR");
    assert.equal(cellObservation(MAZE, 2, 1), "R1D1:DR");
    assert.equal(cellObservation(MAZE, 3, 0), "D2:D");
    assert.equal(env.stateKey(), "0,0");
  });
  test("transitions: open moves move, walls and other text stay (invalid), the goal ends with reward 1", () => {
    const env = new MazeEnv();
    env.reset(0, MAZE);
    let r = env.step("R"); // (1,0): a dead end, farther from the goal
    assert.deepEqual([env.x, env.y, r.reward, r.done, r.info.valid, r.info.executed], [1, 0, 0, false, true, false]);
    assert.equal(r.observation, "R2D2:L");
    r = env.step("D"); // wall at (1,1)
    assert.deepEqual([env.x, env.y, r.info.valid, r.info.executed], [1, 0, false, false]);
    r = env.step(" up ");
    assert.equal(r.info.valid, false);
    r = env.step("L"); // back to (0,0): closer again
    assert.deepEqual([r.info.valid, r.info.executed], [true, true]);
    for (const m of ["D", "D", "R", "R"]) r = env.step(m);
    assert.deepEqual([env.x, env.y, r.done], [2, 2, false]);
    r = env.step("R\n");
    assert.deepEqual([r.reward, r.done, r.info.success], [1, true, true]);
  });
  test("shortest paths by BFS; optimal moves follow them", () => {
    const d = distancesTo(MAZE, 3, 2);
    assert.equal(d[0], 5);
    assert.equal(d[2], -1, "walls are unreachable");
    assert.deepEqual(optimalMoves(MAZE, 0, 0), ["D"]);
    assert.deepEqual(optimalMoves(MAZE, 2, 1), ["D", "R"]);
  });
  test("the scripted expert never walks into a wall; without noise it takes shortest paths", () => {
    const tok = new CharTokenizer();
    const f = mazeFactory({});
    const roller = new EpisodeRoller(f, tok, { template: "text" });
    const rng = Rng.fromSeed(2n);
    for (const noise of [0, 1]) {
      for (let i = 0; i < 30; i++) {
        const task = f.sampleTask(rng, "train").task;
        const env = new MazeEnv();
        env.reset(0, task);
        const start = env.distance;
        const policy = f.expert!(noise);
        let turns = 0;
        for (; turns < 10; turns++) {
          const r = env.step(policy(env, rng));
          assert.equal(r.info.valid, true);
          if (r.done) break;
        }
        if (noise === 0) assert.equal(turns + 1, start, "one move per step of the shortest path");
      }
    }
    const ex = scriptedEpisode(roller, tok, MAZE, f.expert!(0), rng);
    assert.equal(tok.decode(ex.completion), "D\nR3D1:UD\nD\nR3:UR\nR\nR2:LR\nR\nR1:ULR\nR\n");
  });
  test("progressReward pays moves that bring the agent closer", () => {
    const env = new MazeEnv(0.1);
    env.reset(0, MAZE);
    assert.equal(env.step("D").reward, 0.1);
    assert.equal(env.step("U").reward, 0);
  });
  test("tasks: seeded, within the distance bounds, train and eval disjoint", () => {
    const f = mazeFactory({ width: 4, height: 4, minDistance: 2, maxDistance: 4 });
    const a = f.sampleTask(Rng.fromSeed(3n), "train");
    const b = f.sampleTask(Rng.fromSeed(3n), "train");
    assert.deepEqual(a, b);
    const rng = Rng.fromSeed(7n);
    const train = new Set(Array.from({ length: 300 }, () => f.sampleTask(rng, "train").id));
    const evals = new Set(Array.from({ length: 100 }, () => f.sampleTask(rng, "eval").id));
    for (const id of evals) assert.ok(!train.has(id), `${id} is in both splits`);
    for (let i = 0; i < 50; i++) {
      const t = f.sampleTask(rng, "train").task;
      const dist = distancesTo(t, t.goal[0], t.goal[1])[t.start[1] * t.width + t.start[0]] as number;
      assert.ok(dist >= 2 && dist <= 4, `distance ${dist}`);
    }
  });
  test("options are validated with the path in the message", () => {
    assert.throws(
      () => mazeFactory({ wallDensity: 0.9 }),
      (e: unknown) => e instanceof ConfigError && e.path === "env.options.wallDensity" && /wallDensity/.test(e.message),
    );
    assert.throws(() => mazeFactory({ minDistance: 5, maxDistance: 2 }), /minDistance must be ≤ maxDistance/);
    assert.throws(() => mazeFactory({ size: 3 } as never), /size/);
  });
});

describe("tools", () => {
  test("JSON schema of the arguments (OpenAI function format) and a text description", () => {
    assert.deepEqual(toolJsonSchema(calcTool), {
      type: "function",
      function: {
        name: "calc",
        description: "evaluates an arithmetic expression exactly",
        parameters: {
          type: "object",
          properties: {
            expression: {
              type: "string",
              minLength: 1,
              maxLength: 64,
              description: "integers with + - * / and parentheses, e.g. 37*48",
            },
          },
          required: ["expression"],
          additionalProperties: false,
        },
      },
    });
    assert.equal(describeTools([calcTool]), "calc(expression: string) - evaluates an arithmetic expression exactly");
  });
  test("calls: compact and JSON forms, validated; non-calls are null; errors are data", () => {
    const ok = parseToolCall("calc(37*48)", [calcTool]);
    assert.ok(ok?.ok);
    assert.deepEqual(ok.args, { expression: "37*48" });
    const json = parseToolCall(' calc({"expression": "2+3"}) ', [calcTool]);
    assert.ok(json?.ok);
    assert.equal(calcTool.run(json.args as { expression: string }), "=5");
    assert.equal(parseToolCall("1776", [calcTool]), null);
    assert.deepEqual(parseToolCall("sqrt(2)", [calcTool]), {
      ok: false,
      name: "sqrt",
      error: "unknown tool sqrt; tools: calc",
    });
    assert.match((parseToolCall('calc({"expr": 1})', [calcTool]) as { error: string }).error, /bad arguments for calc/);
    assert.match((parseToolCall("calc({oops)", [calcTool]) as { error: string }).error, /not valid JSON/);
    assert.match((parseToolCall("calc()", [calcTool]) as { error: string }).error, /expression/);
    const two = defineTool({
      name: "add",
      description: "adds",
      args: z.strictObject({ a: z.number(), b: z.number() }),
      run: ({ a, b }) => String(a + b),
    });
    assert.match((parseToolCall("add(1,2)", [two]) as { error: string }).error, /takes a JSON object/);
    assert.throws(() => defineTool({ ...two, name: "a-b" }), /not an identifier/);
  });
});

describe("calculator", () => {
  test("call the tool, read its output, answer; roles and execution feedback per step", () => {
    const env = new CalculatorEnv();
    assert.equal(env.reset(0, { a: 37, b: 48, op: "mul" }), "37*48=?");
    let r = env.step("calc(37*48)");
    assert.deepEqual(r, {
      observation: "=1776",
      reward: 0,
      done: false,
      info: { valid: true, executed: true, agent: 1, tool: "calc" },
    });
    r = env.step("calc(1/0)");
    assert.equal(r.info.executed, false);
    assert.match(r.observation, /^error: /);
    r = env.step("1776");
    assert.deepEqual(r, { observation: "", reward: 1, done: true, info: { valid: true, success: true, agent: 0 } });
    env.reset(0, { a: 37, b: 48, op: "mul" });
    assert.equal(env.step("1700").reward, 0);
  });
  test("the scripted expert solves every task through the tool", () => {
    const tok = new CharTokenizer();
    const f = calculatorFactory({ digits: [2, 3] });
    const roller = new EpisodeRoller(f, tok, { template: "text" });
    const rng = Rng.fromSeed(1n);
    for (let i = 0; i < 20; i++) {
      const ex = scriptedEpisode(roller, tok, f.sampleTask(rng, "train").task, f.expert!(0), rng);
      assert.ok(ex.success);
      const text = tok.decode(ex.completion);
      assert.match(text, /^calc\(\d+\*\d+\)\n=\d+\n\d+\n$/);
    }
  });
});

describe("turn templates", () => {
  const tok = new CharTokenizer();
  test("text: one line per turn; a missing action terminator is added before the observation", () => {
    const t = new TurnTemplate(tok, "text");
    assert.equal(tok.decode(t.start("R1:R")), "<|bos|>R1:R\n");
    assert.deepEqual(t.stop, ["\n"]);
    assert.equal(t.actionText(tok.encode("R\n")), "R");
    assert.equal(tok.decode(t.next(tok.encode("R\n"), "D1:D")), "D1:D\n");
    assert.equal(tok.decode(t.next([...tok.encode("R"), tok.eosId], "D1:D")), "\nD1:D\n");
  });
  test("text: tools are described before the first observation", () => {
    const t = new TurnTemplate(tok, "text", { tools: [calcTool] });
    assert.equal(tok.decode(t.start("2*3=?"), { skipSpecialTokens: true }), `${describeTools([calcTool])}\n2*3=?\n`);
  });
  test("chat: each turn is the template's continuation of the conversation", () => {
    const t = new TurnTemplate(tok, "chat");
    const start = t.start("R1:R>");
    assert.equal(tok.decode(start), "<|bos|>user: R1:R>\nassistant: ");
    const action = [...tok.encode("R"), tok.eosId];
    assert.equal(t.actionText(action), "R");
    assert.equal(tok.decode(t.next(action, "D1:D>")), "\nuser: D1:D>\nassistant: ");
    // an action cut without EOS: the template's EOS joins the masked glue
    assert.equal(tok.decode(t.next(tok.encode("LL"), "x")), "<|eos|>\nuser: x\nassistant: ");
  });
});

describe("env in a train config", () => {
  const base = { model: { path: "m" } };
  const err = (raw: Record<string, unknown>, path: string, message: RegExp) =>
    assert.throws(
      () => parseTrainConfig({ ...base, ...raw }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.path, path);
        assert.match(e.message, message);
        return true;
      },
    );
  test("valid: defaults filled, one reward (the return)", () => {
    const c = parseTrainConfig({ ...base, env: { name: "maze", options: { wallDensity: 0.1 } }, preset: "gigpo" });
    assert.deepEqual(c.env, { name: "maze", options: { wallDensity: 0.1 }, template: "auto" });
    assert.equal(c.resolvedAlgo.advantage.estimator, "gigpo");
  });
  test("unknown keys and names are rejected with the path", () => {
    err({ env: { name: "maze", turns: 3 } }, "env.turns", /unknown key "turns"/);
    err(
      { env: { name: "maze", options: { walls: 0.1 } } },
      "env.options.walls",
      /unknown key "walls"; allowed keys: .*wallDensity/,
    );
    err({ env: { name: "mazes" } }, "env.name", /unknown environment "mazes"; known: calculator, maze/);
    err({ env: { name: "maze", maxTurns: 0 } }, "env.maxTurns", /expected number to be >0|Too small/i);
  });
  test("combinations that cannot work", () => {
    err({ env: { name: "maze" }, rewards: ["correctness"] }, "rewards", /episode return .* remove `rewards`/);
    err({ env: { name: "maze" }, task: { name: "arithmetic" } }, "env", /both `task` and `env` are set; keep one/);
    err({ env: { name: "maze" }, preset: "sage" }, "algo.rollout.wrapper", /environment builds its own prompts/);
    err(
      { env: { name: "maze" }, preset: "gigpo", algo: { ratio: { level: "sequence" } } },
      "algo.ratio.level",
      /sequence-level ratio cannot use/,
    );
    err({}, "task", /no data: .* `env`/);
  });
  test("createEnv names the registry", () => {
    assert.equal(createEnv("calculator").name, "calculator");
  });
});
