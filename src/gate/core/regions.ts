// Where regions are, for nearest-first routing. Backends may name one of these regions or give
// their own coordinates (`lat`, `lon`); a backend with neither sorts after all located ones.

export interface Coordinates {
  lat: number;
  lon: number;
}

const REGION_COORDINATES: Record<string, Coordinates> = {
  "us-east": { lat: 39.0, lon: -77.5 },
  "us-central": { lat: 41.9, lon: -93.1 },
  "us-west": { lat: 37.4, lon: -122.1 },
  "ca-central": { lat: 45.5, lon: -73.6 },
  "sa-east": { lat: -23.5, lon: -46.6 },
  "eu-west": { lat: 53.3, lon: -6.3 },
  "eu-central": { lat: 50.1, lon: 8.7 },
  "eu-north": { lat: 59.3, lon: 18.1 },
  "me-central": { lat: 25.2, lon: 55.3 },
  "af-south": { lat: -33.9, lon: 18.4 },
  "ap-south": { lat: 19.1, lon: 72.9 },
  "ap-southeast": { lat: 1.35, lon: 103.8 },
  "ap-northeast": { lat: 35.7, lon: 139.7 },
  "au-east": { lat: -33.9, lon: 151.2 },
};

export function regionCoordinates(region: string, lat?: number, lon?: number): Coordinates | undefined {
  if (lat !== undefined && lon !== undefined) return { lat, lon };
  // "us-east-1", "eu-west-2" and the like map to their family.
  const family = region.toLowerCase().replace(/-\d+[a-z]?$/, "");
  return Object.hasOwn(REGION_COORDINATES, family) ? REGION_COORDINATES[family] : undefined;
}

/** Great-circle distance in kilometres. */
export function distanceKm(a: Coordinates, b: Coordinates): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}
