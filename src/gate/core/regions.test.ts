import { describe, expect, it } from "vitest";
import { distanceKm, regionCoordinates } from "./regions";

describe("regions", () => {
  it("maps numbered regions to their family, and prefers given coordinates", () => {
    expect(regionCoordinates("us-east-1")).toEqual(regionCoordinates("us-east"));
    expect(regionCoordinates("EU-WEST-2a")).toEqual(regionCoordinates("eu-west"));
    expect(regionCoordinates("us-east", 1, 2)).toEqual({ lat: 1, lon: 2 });
    expect(regionCoordinates("mars-north")).toBeUndefined();
  });

  it("measures great-circle distances", () => {
    expect(distanceKm({ lat: 0, lon: 0 }, { lat: 0, lon: 0 })).toBe(0);
    // London to New York is about 5,570 km.
    expect(Math.round(distanceKm({ lat: 51.5, lon: -0.1 }, { lat: 40.7, lon: -74 }) / 10)).toBe(557);
  });
});
