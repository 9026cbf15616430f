export { nonDominated, type Point2 } from "./front.ts";
